// Expands rows of any supported GGML tensor type to Float, following the block layouts of the GGML spec.
// Used for norms, embedding lookups, reference checks and types the integer kernels don't cover.

public enum Dequantize {
    /// Writes `count` floats decoded from `src` (raw tensor bytes, any alignment) into `dst`.
    /// `count` must be a multiple of the type's block size and the type must be `isSupported`;
    /// GGUFFile and the model loader check both before any row reaches here, so a violation is a programming error.
    public static func row(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count >= 0 && count % type.blockSize == 0, "Dequantize: \(count) values is not a whole number of \(type) blocks")
        let blocks = count / type.blockSize
        switch type {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { dst[i] = half(src, i * 2) }
        case .bf16:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(src, i * 2)) << 16) }
        case .q8_0, .q4_0, .q4_1, .q4_K, .q5_K, .q6_K:
            let decode = blockDecoder(type)
            let bytes = type.blockBytes
            for b in 0..<blocks { decode(src + b * bytes, dst + b * type.blockSize) }
        default:
            preconditionFailure("Dequantize: tensor type \(type) is not supported")
        }
    }

    /// One block's decoder; the block layouts differ, the walk over a row's blocks does not.
    private static func blockDecoder(_ type: GGMLType) -> (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void {
        switch type {
        case .q8_0: q8_0
        case .q4_0: q4_0
        case .q4_1: q4_1
        case .q4_K: q4_K
        case .q5_K: q5_K
        case .q6_K: q6_K
        default: preconditionFailure("Dequantize: \(type) has no block decoder")
        }
    }

    /// Row `index` of a tensor in `file`, as floats.
    public static func row(_ file: GGUFFile, _ tensor: GGUFTensorInfo, _ index: Int) -> [Float] {
        precondition(index >= 0 && index < tensor.rowCount, "Dequantize: row \(index) outside \(tensor.name)")
        let n = tensor.rowLength
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            row(tensor.type, file.data(tensor) + index * tensor.type.rowBytes(n), buf.baseAddress!, count: n)
            initialized = n
        }
    }

    /// A whole tensor as floats, rows in file order (fine for norms and small tensors; large ones cost 4 bytes a weight).
    public static func tensor(_ file: GGUFFile, _ tensor: GGUFTensorInfo) -> [Float] {
        let n = tensor.elementCount
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            row(tensor.type, file.data(tensor), buf.baseAddress!, count: n)
            initialized = n
        }
    }

    // MARK: Scalars. GGUF is little-endian, as is every host Valet runs on.

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    }

    /// IEEE half to Float with integer ops only, so it vectorizes without F16C and is exact for every input:
    /// shifting the exponent+mantissa into Float position and scaling by 2^112 rebiases normals and subnormals alike.
    @inline(__always) static func half(_ bits: UInt16) -> Float {
        let h = UInt32(bits)
        let sign = (h & 0x8000) << 16
        let em = h & 0x7FFF
        let magnitude = em >= 0x7C00
            ? (em << 13) | 0x7F80_0000 // infinity / NaN keep their payload
            : (Float(bitPattern: em << 13) * 0x1p112).bitPattern
        return Float(bitPattern: sign | magnitude)
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float { half(u16(p, offset)) }

    // MARK: Blocks. Each takes one block's bytes and writes its values in element order.
    // The arithmetic mirrors the reference order (scale products first, then q·scale − min) so results are bit-exact.

    /// Q8_0: f16 d, then 32 signed bytes; x = d·q.
    @inline(__always) static func q8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        let q = (p + 2).assumingMemoryBound(to: Int8.self)
        for i in 0..<32 { y[i] = d * Float(q[i]) }
    }

    /// Q4_0: f16 d, 16 bytes of nibbles (low nibbles are elements 0–15, high nibbles 16–31); x = d·(q − 8).
    @inline(__always) static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        let q = (p + 2).assumingMemoryBound(to: UInt8.self)
        for i in 0..<16 {
            y[i] = d * Float(Int32(q[i] & 0xF) - 8)
            y[i + 16] = d * Float(Int32(q[i] >> 4) - 8)
        }
    }

    /// Q4_1: f16 d, f16 m, nibbles as Q4_0; x = d·q + m.
    @inline(__always) static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        let q = (p + 4).assumingMemoryBound(to: UInt8.self)
        for i in 0..<16 {
            y[i] = d * Float(q[i] & 0xF) + m
            y[i + 16] = d * Float(q[i] >> 4) + m
        }
    }

    /// The 6-bit scale and min of sub-block `j` (0–7) from the 12 packed bytes of a Q4_K/Q5_K super-block:
    /// bytes 0–3 hold scales 0–3 and bytes 4–7 mins 0–3 in their low 6 bits; sub-blocks 4–7 take their low
    /// 4 bits from bytes 8–11 and their top 2 bits from the spare top bits of bytes 0–7.
    @inline(__always) static func scaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (Float, Float) {
        if j < 4 { return (Float(s[j] & 63), Float(s[j + 4] & 63)) }
        let sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)
        let m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        return (Float(sc), Float(m))
    }

    /// Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes. Each 32 bytes of nibbles hold two
    /// sub-blocks of 32: low nibbles first, then high. x = (d·sc)·q − (dmin·m).
    @inline(__always) static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        kQuant(p, y, q: p + 16, qh: nil)
    }

    /// Q5_K: as Q4_K plus 32 bytes qh after the scales; bit j of qh[l] is the fifth bit of element l of sub-block j.
    @inline(__always) static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        kQuant(p, y, q: p + 48, qh: (p + 16).assumingMemoryBound(to: UInt8.self))
    }

    /// Q4_K and Q5_K share scales and layout; Q4_K is Q5_K with every fifth bit zero.
    @inline(__always) private static func kQuant(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>,
                                                 q raw: UnsafeRawPointer, qh: UnsafePointer<UInt8>?) {
        let d = half(p, 0), dmin = half(p, 2)
        let s = (p + 4).assumingMemoryBound(to: UInt8.self)
        let q = raw.assumingMemoryBound(to: UInt8.self)
        for c in 0..<4 {
            let (sc0, m0) = scaleMin(s, 2 * c), (sc1, m1) = scaleMin(s, 2 * c + 1)
            let d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1
            let qc = q + 32 * c, yc = y + 64 * c
            let shift0 = UInt8(2 * c), shift1 = UInt8(2 * c + 1)
            for l in 0..<32 {
                let h = qh?[l] ?? 0
                let h0 = ((h >> shift0) & 1) << 4, h1 = ((h >> shift1) & 1) << 4
                yc[l] = d0 * Float((qc[l] & 0xF) | h0) - o0
                yc[l + 32] = d1 * Float((qc[l] >> 4) | h1) - o1
            }
        }
    }

    /// Q6_K: 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 signed scales, f16 d last.
    /// Each half of 128 values uses 64 ql and 32 qh bytes: values l, l+32, l+64, l+96 take ql[l] low,
    /// ql[l+32] low, ql[l] high, ql[l+32] high with qh[l] bits 0–1, 2–3, 4–5, 6–7; one scale per 16 values.
    /// x = (d·scale)·(q − 32).
    @inline(__always) static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let ql = p.assumingMemoryBound(to: UInt8.self)
        let qh = (p + 128).assumingMemoryBound(to: UInt8.self)
        let sc = (p + 192).assumingMemoryBound(to: Int8.self)
        let d = half(p, 208)
        for h in 0..<2 {
            let lo = ql + 64 * h, hi = qh + 32 * h, yh = y + 128 * h, sh = sc + 8 * h
            for g in 0..<2 { // 16-value groups inside each 32-value run share one scale
                let s0 = d * Float(sh[g]), s1 = d * Float(sh[g + 2]), s2 = d * Float(sh[g + 4]), s3 = d * Float(sh[g + 6])
                for l in (16 * g)..<(16 * g + 16) {
                    let a = lo[l], b = lo[l + 32], e = hi[l]
                    yh[l] = s0 * Float(Int32((a & 0xF) | ((e & 3) << 4)) - 32)
                    yh[l + 32] = s1 * Float(Int32((b & 0xF) | (((e >> 2) & 3) << 4)) - 32)
                    yh[l + 64] = s2 * Float(Int32((a >> 4) | (((e >> 4) & 3) << 4)) - 32)
                    yh[l + 96] = s3 * Float(Int32((b >> 4) | (((e >> 6) & 3) << 4)) - 32)
                }
            }
        }
    }
}
