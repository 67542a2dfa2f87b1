// The C kernels against plain Swift references: activation quantization, the batched integer matmuls (random and
// real weight rows), half conversion, paged attention, and the thread pool's work split.
import CKernels
import Foundation
import TestSupport
import Testing
@testable import Inference

struct KernelTests {
    /// Deterministic generator so failures reproduce.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        mutating func float(_ range: ClosedRange<Float> = -1...1) -> Float {
            range.lowerBound + Float(next() % 1_000_000) / 1_000_000 * (range.upperBound - range.lowerBound)
        }
    }

    /// `x` as quantized activation rows of `width` values (the layout in CKernels.h), with readers for its parts.
    final class Quantized {
        let rows: Activations
        let width: Int

        init(_ x: [Float], width: Int) {
            self.width = width
            rows = Activations(width: width, capacity: x.count / width)
            x.withUnsafeBufferPointer { rows.floats.update(from: $0.baseAddress!, count: x.count) }
            rows.quantize(0..<x.count / width)
        }

        deinit { rows.deallocate() }

        var pointer: UnsafeRawPointer { UnsafeRawPointer(rows.quantized) }
        var rowBytes: Int { rows.quantizedRowBytes }
        private func base(_ row: Int) -> UnsafeRawPointer { pointer + row * rowBytes }
        func codes(row: Int, block: Int) -> [Int16] {
            (0..<32).map { base(row).load(fromByteOffset: (block * 32 + $0) * 2, as: Int16.self) }
        }
        func d(row: Int, block: Int) -> Float { base(row).load(fromByteOffset: width * 2 + block * 4, as: Float.self) }
        func s(row: Int, block: Int) -> Float {
            base(row).load(fromByteOffset: width * 2 + (width / 32 + block) * 4, as: Float.self)
        }
    }

    @Test func quantizedActivationsReconstructTheRow() {
        var rng = Rng(state: 1)
        var x = (0..<576).map { _ in rng.float(-3...3) }
        x[40] = 0  // mixed signs, an exact zero, and an all-zero block below
        for i in 64..<96 { x[i] = 0 }
        let xq = Quantized(x, width: 576)
        #expect(xq.rowBytes % 64 == 0 && Int(bitPattern: xq.pointer) % 64 == 0)
        for b in 0..<576 / 32 {
            let slice = x[b * 32..<(b + 1) * 32]
            let amax = slice.map(abs).max()!
            let d = xq.d(row: 0, block: b), q = xq.codes(row: 0, block: b)
            #expect(abs(d - amax / 32767) <= 1e-6 * max(amax, 1e-30))
            for (i, v) in slice.enumerated() {
                #expect(abs(Float(q[i]) * d - v) <= d * 0.5 + 1e-7, "block \(b) element \(i)")
            }
            let s = xq.s(row: 0, block: b)
            #expect(abs(s - d * Float(q.reduce(0) { $0 + Int($1) })) <= 1e-5 * max(abs(s), 1))
        }
        #expect(xq.codes(row: 0, block: 2).allSatisfy { $0 == 0 } && xq.d(row: 0, block: 2) == 0)
    }

    /// Random blocks of `type` with sane half-precision scales (and mins).
    static func randomMatrix(_ type: GGMLType, rows: Int, columns: Int, rng: inout Rng) -> [UInt8] {
        var bytes = (0..<type.rowBytes(columns) * rows).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for block in stride(from: 0, to: bytes.count, by: type.blockBytes) {
            let d = Float16(rng.float(0.001...0.05)), m = Float16(rng.float(-0.2...0.2))
            withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes[block] = $0[0]; bytes[block + 1] = $0[1] }
            if type == .q4_1 { withUnsafeBytes(of: m.bitPattern.littleEndian) { bytes[block + 2] = $0[0]; bytes[block + 3] = $0[1] } }
        }
        return bytes
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0])
    func batchedMatmulMatchesScalarReference(type: GGMLType) {
        var rng = Rng(state: UInt64(type.rawValue) + 7)
        let rows = 37, columns = 576, nb = columns / 32
        let w = Self.randomMatrix(type, rows: rows, columns: columns, rng: &rng)
        for cols in [1, 2, 3, 4, 5, 8, 9] {
            let x = (0..<cols * columns).map { _ in rng.float(-2...2) }
            let xq = Quantized(x, width: columns)
            var fast = [Float](repeating: .nan, count: cols * rows), slow = fast, exact = fast
            // Rows 3..<30 only, written with a stride wider than the row count: the rest must stay untouched.
            let ldo = rows
            #expect(valet_matmul_q16(Int32(type.rawValue), w, type.rowBytes(columns), Int32(nb), 3, 30, xq.pointer, xq.rowBytes,
                                     Int32(cols), &fast, Int32(ldo)) == 1)
            #expect(valet_matmul_q16_scalar(Int32(type.rawValue), w, type.rowBytes(columns), Int32(nb), 3, 30, xq.pointer,
                                            xq.rowBytes, Int32(cols), &slow, Int32(ldo)) == 1)
            // And an exact float product from the dequantized weights.
            var row = [Float](repeating: 0, count: columns)
            for r in 3..<30 {
                #expect(valet_dequantize_row(Int32(type.rawValue), w, type.rowBytes(columns), Int32(r), &row, Int32(columns)) == 1)
                for c in 0..<cols {
                    exact[c * ldo + r] = zip(row, x[c * columns..<(c + 1) * columns]).reduce(0) { $0 + $1.0 * $1.1 }
                }
            }
            for c in 0..<cols {
                for r in 0..<rows {
                    let i = c * ldo + r
                    if (3..<30).contains(r) {
                        #expect(abs(fast[i] - slow[i]) <= 1e-4 * max(1, abs(slow[i])), "\(type) cols \(cols) [\(c), \(r)]")
                        #expect(abs(fast[i] - exact[i]) <= 2e-3 * max(1, abs(exact[i])), "\(type) vs float [\(c), \(r)]")
                    } else {
                        #expect(fast[i].isNaN, "\(type) wrote outside its rows at [\(c), \(r)]")
                    }
                }
            }
        }
    }

    /// A column's result must not depend on the columns beside it in a call (tile widths 1-8, a tile boundary at
    /// 8), bit for bit: that is what makes a batched step equal to each sequence alone. Inputs that are not 64-byte
    /// aligned take the scalar path, with the same values to rounding.
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0])
    func everyColumnEqualsItselfAlone(type: GGMLType) {
        var rng = Rng(state: UInt64(type.rawValue) + 70)
        let rows = 21, columns = 1536, nb = columns / 32, cols = 11
        let w = Self.randomMatrix(type, rows: rows, columns: columns, rng: &rng)
        let xq = Quantized((0..<cols * columns).map { _ in rng.float(-2...2) }, width: columns)
        var together = [Float](repeating: .nan, count: cols * rows)
        _ = valet_matmul_q16(Int32(type.rawValue), w, type.rowBytes(columns), Int32(nb), 0, Int32(rows), xq.pointer,
                             xq.rowBytes, Int32(cols), &together, Int32(rows))
        for first in 0..<cols {
            for width in [1, 2, 5, 8] where first + width <= cols {
                var part = [Float](repeating: .nan, count: width * rows)
                _ = valet_matmul_q16(Int32(type.rawValue), w, type.rowBytes(columns), Int32(nb), 0, Int32(rows),
                                     xq.pointer + first * xq.rowBytes, xq.rowBytes, Int32(width), &part, Int32(rows))
                #expect(part == Array(together[first * rows..<(first + width) * rows]), "\(type) columns \(first)..<\(first + width)")
            }
        }
        // The same rows copied to an address 16 bytes off a cache line.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: cols * xq.rowBytes + 64, alignment: 64)
        defer { raw.deallocate() }
        raw.advanced(by: 16).copyMemory(from: xq.pointer, byteCount: cols * xq.rowBytes)
        var shifted = [Float](repeating: .nan, count: cols * rows)
        _ = valet_matmul_q16(Int32(type.rawValue), w, type.rowBytes(columns), Int32(nb), 0, Int32(rows), raw + 16,
                             xq.rowBytes, Int32(cols), &shifted, Int32(rows))
        for i in 0..<cols * rows {
            #expect(abs(shifted[i] - together[i]) <= 1e-4 * max(1, abs(together[i])), "\(type) unaligned [\(i)]")
        }
    }

    @Test func realWeightRowsMatchFloatProducts() throws {
        guard let path = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
        let file = try GGUFFile(path: path)
        var rng = Rng(state: 99)
        for name in ["blk.0.attn_q.weight", "blk.29.ffn_down.weight", "token_embd.weight"] {
            let m = try QuantizedMatrix(file: file, name: name)
            let x = (0..<3 * m.columns).map { _ in rng.float(-1...1) }
            let xq = Quantized(x, width: m.columns)
            let rows = 0..<64
            var out = [Float](repeating: 0, count: 3 * rows.count)
            #expect(valet_matmul_q16(Int32(m.type.rawValue), m.base, m.rowBytes, Int32(m.columns / 32), 0, Int32(rows.count), xq.pointer,
                                     xq.rowBytes, 3, &out, Int32(rows.count)) == 1)
            var row = [Float](repeating: 0, count: m.columns)
            var worst: Float = 0
            for r in rows {
                m.dequantizeRow(r, into: &row)
                for c in 0..<3 {
                    let exact = zip(row, x[c * m.columns..<(c + 1) * m.columns]).reduce(0) { $0 + $1.0 * $1.1 }
                    worst = max(worst, abs(out[c * rows.count + r] - exact) / max(1, abs(exact)))
                }
            }
            #expect(worst <= 1e-3, "\(name) (\(m.type)): worst relative error \(worst)")
        }
    }

    /// SwiGLU's vectorized exponential against Foundation's, over the range activations take and the clamped ends.
    @Test func swigluMatchesReference() {
        var rng = Rng(state: 12)
        // The extremes first, so the vector path sees them (the last n % 8 take the scalar one).
        var gate: [Float] = [0, -0, 1e-30, -1e-30, 88, -88, 89, -89, 100, -100, 1e4, -1e4, 87.5, -87.5, 30, -30]
        gate += (0..<1001).map { _ in rng.float(-20...20) }
        let up = gate.map { _ in rng.float(-3...3) }
        var out = gate
        valet_swiglu(&out, up, Int32(out.count))
        for i in gate.indices {
            let g = Double(gate[i]), exact = g / (1 + Foundation.exp(-g)) * Double(up[i])
            // Relative, with an absolute floor for the far negative end, where silu is ~1e-35 against an exact 0.
            #expect(abs(Double(out[i]) - exact) <= 4e-7 * abs(exact) + 1e-30, "gate \(gate[i])")
        }
    }

    @Test func halfConversionRoundsToNearestEven() {
        var rng = Rng(state: 3)
        var values: [Float] = [0, -0, 1, -1, 65504, 65519, 65520, 1e-8, 6.1e-5, 5.96e-8, 2.98e-8, .infinity, -.infinity, 0.1, 1 / 3]
        values += (0..<2000).map { _ in rng.float(-1...1) * pow(2, Float(Int(rng.next() % 40) - 28)) }
        var fast = [UInt16](repeating: 0, count: values.count), scalar = fast
        valet_f32_to_f16(values, &fast, Int32(values.count))
        valet_f32_to_f16_scalar(values, &scalar, Int32(values.count))
        for (i, v) in values.enumerated() {
            let expected = Float16(v).bitPattern
            #expect(fast[i] == expected, "\(v): \(fast[i]) vs \(expected)")
            #expect(scalar[i] == expected, "\(v) (scalar): \(scalar[i]) vs \(expected)")
        }
        var back = [Float](repeating: 0, count: values.count)
        valet_f16_to_f32(fast, &back, Int32(values.count))
        for (i, b) in back.enumerated() { #expect(b == Float(Float16(bitPattern: fast[i]))) }
    }

    /// Head size 64 takes the AVX2 path, 16 the portable one.
    @Test(arguments: [16, 64])
    func pagedAttentionMatchesReference(hd: Int) {
        var rng = Rng(state: 5)
        let heads = 4, kvHeads = 2, kvDim = kvHeads * hd, blockSize = 16, blocks = 6, positions = 37
        let blockStride = 2 * blockSize * kvDim  // K block then V block, as one layer of the pool
        var pool = [UInt16](repeating: 0x7E00, count: blocks * blockStride)  // NaN where nothing was written
        let table: [Int32] = [4, 1, 3]  // scattered, out of order
        var keys: [[Float]] = [], values: [[Float]] = []
        for p in 0..<positions {
            let k = (0..<kvDim).map { _ in Float(Float16(rng.float())) }, v = (0..<kvDim).map { _ in Float(Float16(rng.float())) }
            keys.append(k)
            values.append(v)
            let at = Int(table[p / blockSize]) * blockStride + (p % blockSize) * kvDim
            for i in 0..<kvDim {
                pool[at + i] = Float16(k[i]).bitPattern
                pool[at + blockSize * kvDim + i] = Float16(v[i]).bitPattern
            }
        }
        let q = (0..<heads * hd).map { _ in rng.float(-2...2) }
        var out = [Float](repeating: 0, count: heads * hd), scores = [Float](repeating: 0, count: positions)
        let scale = 1 / Float(hd).squareRoot()
        pool.withUnsafeBufferPointer { p in
            valet_attention_f16(q, Int32(heads), Int32(kvHeads), Int32(hd), 0, Int32(heads), p.baseAddress!,
                                p.baseAddress! + blockSize * kvDim, table, blockStride, Int32(blockSize),
                                Int32(positions), scale, &scores, &out)
        }
        for h in 0..<heads {
            let g = h / (heads / kvHeads)
            let s = (0..<positions).map { p in (0..<hd).reduce(Float(0)) { $0 + q[h * hd + $1] * keys[p][g * hd + $1] } * scale }
            let e = s.map { exp($0 - s.max()!) }, total = e.reduce(0, +)
            for i in 0..<hd {
                let expected = (0..<positions).reduce(Float(0)) { $0 + e[$1] / total * values[$1][g * hd + i] }
                #expect(abs(out[h * hd + i] - expected) <= 1e-5, "head \(h) dim \(i)")
            }
        }
    }

    @Test func poolSplitsWorkExactlyOnceEvenAfterParking() {
        let pool = ThreadPool(threads: 2, spinMicroseconds: 1_000)
        #expect(pool.threadCount == 2)
        for round in 0..<200 {
            let count = round % 37 + 1
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
            hits.initialize(repeating: 0, count: count)
            pool.parallelFor(count) { range in for i in range { hits[i] += 1 } }
            #expect((0..<count).allSatisfy { hits[$0] == 1 }, "round \(round)")
            hits.deallocate()
            // Now and then let the worker park on the futex, so the wake-up path runs too.
            if round % 50 == 0 { usleep(5_000) }
        }
        var seen = [Int](repeating: 0, count: 2)
        seen.withUnsafeMutableBufferPointer { s in pool.run { t, n in s[t] = n } }
        #expect(seen == [2, 2])
    }
}

/// Types without an integer kernel go through dequantize-then-dot; F16 and BF16 stand in for them with exact data.
@Test(arguments: [GGMLType.bf16, .f16, .f32])
func floatAndDequantizedPathsMatchReference(type: GGMLType) {
    var rng = KernelTests.Rng(state: 17)
    let rows = 11, columns = 64, cols = 3
    var bytes = [UInt8](repeating: 0, count: type.rowBytes(columns) * rows)
    var weights = [Float](repeating: 0, count: rows * columns)
    for i in 0..<rows * columns {
        // Half values cut to bfloat16 precision: exactly representable in all three types.
        let v = Float(bitPattern: Float(Float16(rng.float(-1...1))).bitPattern & 0xFFFF_0000)
        weights[i] = v
        switch type {
        case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { for k in 0..<4 { bytes[i * 4 + k] = $0[k] } }
        case .f16: withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { for k in 0..<2 { bytes[i * 2 + k] = $0[k] } }
        default: withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { for k in 0..<2 { bytes[i * 2 + k] = $0[k] } }
        }
    }
    let input = Activations(width: columns, capacity: cols)
    defer { input.deallocate() }
    for i in 0..<cols * columns { input.floats[i] = rng.float(-2...2) }
    var out = [Float](repeating: 0, count: cols * rows)
    bytes.withUnsafeBytes { raw in
        let m = QuantizedMatrix(name: "test", type: type, base: raw.baseAddress!, rows: rows, columns: columns)
        #expect(m.path == (type == .bf16 ? .dequantized : .float))
        out.withUnsafeMutableBufferPointer { o in
            MatMul.multiply(m, rows: 0..<rows, input: input, columns: cols, out: o.baseAddress!, stride: rows)
        }
    }
    for c in 0..<cols {
        for r in 0..<rows {
            let exact = (0..<columns).reduce(Float(0)) { $0 + weights[r * columns + $1] * input.floats[c * columns + $1] }
            #expect(abs(out[c * rows + r] - exact) <= 1e-4 * max(1, abs(exact)), "\(type) [\(c), \(r)]")
        }
    }
}
