// A batch of activation rows (one per token) in float and, for the integer kernels, as 16-bit integer blocks.
import CKernels

/// Scratch owned by the forward pass: `count` rows of `width` floats and their 16-bit block form. Not thread-safe by design;
/// the pool's threads only touch disjoint rows.
public struct Activations: @unchecked Sendable {
    public let floats: UnsafeMutablePointer<Float>
    public let blocks: UnsafeMutablePointer<valet_q16>
    public let width: Int
    public let capacity: Int

    public init(width: Int, capacity: Int) {
        precondition(width % 32 == 0, "activation width must be a multiple of 32")
        self.width = width
        self.capacity = capacity
        floats = .allocate(capacity: width * capacity)
        floats.initialize(repeating: 0, count: width * capacity)
        blocks = .allocate(capacity: width / 32 * capacity)
    }

    public func deallocate() {
        floats.deallocate()
        blocks.deallocate()
    }

    public var blocksPerRow: Int { width / 32 }
    public func row(_ t: Int) -> UnsafeMutablePointer<Float> { floats + t * width }

    /// Quantizes rows `range` to 16-bit blocks.
    public func quantize(_ range: Range<Int>) {
        for t in range { valet_quantize_q16(floats + t * width, blocks + t * blocksPerRow, Int32(width)) }
    }
}
