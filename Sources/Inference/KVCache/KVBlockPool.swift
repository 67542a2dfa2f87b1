// Storage for the paged KV cache: one shared pool of 16-token blocks holding every layer's keys and values.
import Foundation

/// Half-precision storage laid out [block][layer][K then V][token in block][kvDim]. Which block belongs to which
/// sequence is the scheduler's business; the pool is only addressed through block tables. Pages are mapped
/// lazily, so resident memory grows with the blocks actually written.
public final class KVBlockPool: @unchecked Sendable {
    // Only the engine loop's step (and its pool threads, on disjoint rows) touches the storage.
    public static let blockSize = 16
    public let blockCount: Int
    public let layers: Int
    public let kvDim: Int
    public let storage: UnsafeMutablePointer<UInt16>
    private let byteCount: Int

    /// Halves from one block to the next.
    public var blockStride: Int { layers * 2 * Self.blockSize * kvDim }
    public var bytesPerBlock: Int { blockStride * 2 }

    public init(blocks: Int, layers: Int, kvDim: Int) throws(EngineError) {
        guard blocks > 0 else { throw EngineError("the KV cache needs at least one block of \(Self.blockSize) tokens") }
        blockCount = blocks
        self.layers = layers
        self.kvDim = kvDim
        byteCount = blocks * layers * 2 * Self.blockSize * kvDim * 2
        guard let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED
        else {
            throw EngineError("cannot reserve \(byteCount >> 20) MiB for the KV cache: \(String(cString: strerror(errno)))")
        }
        storage = p.bindMemory(to: UInt16.self, capacity: byteCount / 2)
    }

    deinit { munmap(storage, byteCount) }

    /// Seeds block `destination` with the first `tokens` rows of `source`, in every layer's keys and values.
    public func copyRows(from source: Int, to destination: Int, tokens: Int) {
        precondition(source >= 0 && source < blockCount && destination >= 0 && destination < blockCount && source != destination)
        let rows = Swift.min(Swift.max(tokens, 0), Self.blockSize) * kvDim
        guard rows > 0 else { return }
        for layer in 0..<layers {
            for half in [keys(layer: layer), values(layer: layer)] {
                (half + destination * blockStride).update(from: half + source * blockStride, count: rows)
            }
        }
    }

    /// Keys of `layer` in block 0; add `block * blockStride` for another block.
    public func keys(layer: Int) -> UnsafeMutablePointer<UInt16> { storage + layer * 2 * Self.blockSize * kvDim }
    public func values(layer: Int) -> UnsafeMutablePointer<UInt16> { keys(layer: layer) + Self.blockSize * kvDim }
}
