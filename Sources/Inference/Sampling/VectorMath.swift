// Vectorized max / exp-sum over a logits row: the sampler touches all 49152 logits per token, so scalar expf is too slow.
import Foundation

enum VectorMath {
    private static let lanes = 16
    typealias Vec = SIMD16<Float>

    /// The shared arithmetic of both exps, for one lane or sixteen: the rounded scaled input `t` (its low bits hold
    /// the power of two) and the polynomial on the remainder. One body, so the scalar walk and the vector sum agree.
    @inline(__always)
    private static func expParts<V: ExpLane>(_ xc: V, one: V) -> (t: V, y: V) {
        let t = xc * 1.442_695_04 + 12_582_912.0
        let fx = t - 12_582_912.0
        var r = xc - fx * 0.693_359_375
        r = r + fx * 2.121_944_40e-4
        var y = one * 1.987_569_15e-4
        y = y * r + 1.398_199_95e-3
        y = y * r + 8.333_451_9e-3
        y = y * r + 4.166_579_59e-2
        y = y * r + 1.666_666_55e-1
        y = y * r + 5.000_000_12e-1
        y = y * (r * r) + r + 1
        return (t, y)
    }

    /// exp(x), Cephes-style: round x·log2(e) with the 1.5·2^23 trick (its bits hold the integer), a degree-6
    /// polynomial on the remainder, the power of two built from bits. Below -87 gives exactly 0, so a token banned
    /// with a -inf bias can never be drawn. Written with plain lane-wise ops only: SIMD rounding / conversion
    /// helpers fall back to per-lane code and made this 40× slower.
    @inline(__always)
    static func exp(_ x: Vec) -> Vec {
        var xc = x
        xc.replace(with: -87.5, where: x .< -87.5)
        xc.replace(with: 88, where: x .> 88)
        let (t, y) = expParts(xc, one: Vec(repeating: 1))
        let n = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        var v = y * unsafeBitCast((n &+ 127) &<< 23, to: Vec.self)
        v.replace(with: 0, where: x .< -87)
        return v
    }

    /// The same approximation for one value, so scalar walks agree with vector sums.
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let xc = x < -87.5 ? -87.5 : (x > 88 ? 88 : x)
        let (t, y) = expParts(xc, one: Float(1))
        let n = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        let v = y * Float(bitPattern: UInt32(bitPattern: (n &+ 127) &<< 23))
        return x < -87 ? 0 : v
    }

    static func max(_ row: UnsafeMutableBufferPointer<Float>) -> Float {
        let n = row.count
        var best = Vec(repeating: -.infinity)
        var i = 0
        let base = row.baseAddress!
        while i + lanes <= n {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vec.self)
            best.replace(with: v, where: v .> best)
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

/// What `VectorMath.expParts` needs of a lane type: Float and SIMD16<Float> both have it.
protocol ExpLane {
    static func * (a: Self, b: Self) -> Self
    static func * (a: Self, b: Float) -> Self
    static func + (a: Self, b: Self) -> Self
    static func + (a: Self, b: Float) -> Self
    static func - (a: Self, b: Self) -> Self
    static func - (a: Self, b: Float) -> Self
}

extension Float: ExpLane {}
extension SIMD16: ExpLane where Scalar == Float {}
