// A batch of activation rows (one per token) in float and, for the integer kernels, quantized to 16-bit blocks.
import CKernels

/// Scratch owned by the forward pass: `count` rows of `width` floats and their 16-bit block form. Not thread-safe by design;
/// the pool's threads only touch disjoint rows.
public struct Activations: @unchecked Sendable {
    public let floats: UnsafeMutablePointer<Float>
    /// `capacity` quantized rows of `quantizedRowBytes` each, 64-byte aligned (layout in CKernels.h).
    public let quantized: UnsafeMutableRawPointer
    public let quantizedRowBytes: Int
    public let width: Int
    public let capacity: Int

    public init(width: Int, capacity: Int) {
        precondition(width % 32 == 0, "activation width must be a multiple of 32")
        self.width = width
        self.capacity = capacity
        floats = .allocate(capacity: width * capacity)
        floats.initialize(repeating: 0, count: width * capacity)
        quantizedRowBytes = valet_q16_row_bytes(Int32(width))
        quantized = .allocate(byteCount: quantizedRowBytes * capacity, alignment: 64)
    }

    public func deallocate() {
        floats.deallocate()
        quantized.deallocate()
    }

    public func row(_ t: Int) -> UnsafeMutablePointer<Float> { floats + t * width }

    /// Quantizes rows `range` to 16-bit blocks.
    public func quantize(_ range: Range<Int>) {
        for t in range { valet_quantize_q16(floats + t * width, quantized + t * quantizedRowBytes, Int32(width)) }
    }
}
