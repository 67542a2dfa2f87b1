// Vectorized max / exp-sum over a logits row: the sampler touches all 49152 logits per token, so scalar expf is too slow.
import Foundation

enum VectorMath {
    private static let lanes = 16
    typealias Vec = SIMD16<Float>

    /// exp(x) to ~1 ulp-ish accuracy (Cephes-style range reduction + degree-6 polynomial); below -87 gives exactly 0
    /// so that a token banned with a -inf bias can never be drawn.
    @inline(__always)
    static func exp(_ xIn: Vec) -> Vec {
        let x = xIn.clamped(lowerBound: Vec(repeating: -87.5), upperBound: Vec(repeating: 88.0))
        let fx = (x * 1.442_695_04).rounded(.toNearestOrEven)
        var r = x - fx * 0.693_359_375
        r = r + fx * 2.121_944_40e-4
        var y = Vec(repeating: 1.987_569_15e-4)
        y = y * r + 1.398_199_95e-3
        y = y * r + 8.333_451_9e-3
        y = y * r + 4.166_579_59e-2
        y = y * r + 1.666_666_55e-1
        y = y * r + 5.000_000_12e-1
        y = y * (r * r) + r + 1
        let n = SIMD16<Int32>(fx, rounding: .towardZero)
        let bits = SIMD16<UInt32>(truncatingIfNeeded: n &+ 127) &<< 23
        let scaled = y * unsafeBitCast(bits, to: Vec.self)
        return scaled.replacing(with: 0, where: xIn .< -87.0)
    }

    @inline(__always)
    static func exp(_ x: Float) -> Float {
        exp(Vec(repeating: x))[0]
    }

    static func max(_ row: UnsafeMutableBufferPointer<Float>) -> Float {
        let n = row.count
        var best = Vec(repeating: -.infinity)
        var i = 0
        let base = row.baseAddress!
        while i + lanes <= n {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vec.self)
            best = pointwiseMax(best, v)
            i += lanes
        }
        var m = best.max()
        while i < n {
            if row[i] > m { m = row[i] }
            i += 1
        }
        return m
    }

    /// Σ exp((row[i] - offset) * scale) over `range`.
    static func sumExp(_ row: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>, offset: Float, scale: Float) -> Double {
        let base = row.baseAddress!
        var acc = Vec(repeating: 0)
        var i = range.lowerBound
        let off = Vec(repeating: offset)
        let sc = Vec(repeating: scale)
        while i + lanes <= range.upperBound {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vec.self)
            acc += exp((v - off) * sc)
            i += lanes
        }
        var total = Double(acc.sum())
        while i < range.upperBound {
            total += Double(exp((row[i] - offset) * scale))
            i += 1
        }
        return total
    }

    /// log Σ exp(row[i]): the log-softmax denominator.
    static func logSumExp(_ row: UnsafeMutableBufferPointer<Float>) -> Float {
        let m = max(row)
        guard m.isFinite else { return m }
        let s = sumExp(row, 0..<row.count, offset: m, scale: 1)
        return m + Float(Foundation.log(s))
    }
}
