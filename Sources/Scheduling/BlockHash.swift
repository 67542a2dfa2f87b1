// The identity of a full KV block's content: its tokens chained with the hash of the block before it, so equal
// prefixes give equal chains. The first block's parent is a root made of the model and the request's salt.

/// 128 bits from two independently seeded 64-bit lanes: accidental collisions are out of reach for any cache size.
/// It is not a cryptographic hash; tenants who must not share entries are kept apart by their salt, not by secrecy.
public struct BlockHash: Hashable, Sendable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    /// The parent of every first block: which model computed the KV, and the salt (nil and "" differ).
    static func root(model: String, salt: String?) -> BlockHash {
        var h = BlockHash(high: 0x6A09_E667_F3BC_C908, low: 0xBB67_AE85_84CA_A73B)
        for byte in model.utf8 { h = h.mixing(UInt64(byte)) }
        h = h.mixing(0x1_0000_0000)  // ends the model name, so no model/salt split of the same bytes collides
        if let salt {
            h = h.mixing(0x2_0000_0000)
            for byte in salt.utf8 { h = h.mixing(UInt64(byte)) }
        }
        return h.finalized(length: 0)
    }

    /// The hash of a block holding `tokens` whose parent block hashes to `self`.
    func child<C: Collection<Int32>>(_ tokens: C) -> BlockHash {
        var h = self
        for t in tokens { h = h.mixing(UInt64(UInt32(bitPattern: t))) }
        return h.finalized(length: UInt64(tokens.count))
    }

    /// The hashes of the full blocks of `tokens`, continuing a chain that already covers `known.count` blocks.
    static func extend(_ known: inout [BlockHash], tokens: [Int32], blockSize: Int, root: BlockHash) {
        let full = tokens.count / blockSize
        while known.count < full {
            let b = known.count
            let parent = known.last ?? root
            known.append(parent.child(tokens[(b * blockSize)..<((b + 1) * blockSize)]))
        }
    }

    private func mixing(_ word: UInt64) -> BlockHash {
        BlockHash(high: (high ^ word) &* 0x9E37_79B9_7F4A_7C15 ^ (high >> 29),
                  low: ((low ^ word) &* 0xC2B2_AE3D_27D4_EB4F).rotated(31) &+ 0x1656_67B1_9E37_79F9)
    }

    private func finalized(length: UInt64) -> BlockHash {
        BlockHash(high: Self.avalanche(high ^ length ^ (low << 1)), low: Self.avalanche(low ^ (length &* 0x27D4_EB2F)))
    }

    /// MurmurHash3's 64-bit finalizer: every input bit flips each output bit with probability about 1/2.
    private static func avalanche(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k &*= 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k &*= 0xC4CE_B9FE_1A85_EC53
        k ^= k >> 33
        return k
    }

    public var description: String {
        let hex = String(high, radix: 16) + String(low, radix: 16)
        return String(hex.prefix(12))
    }
}

private extension UInt64 {
    func rotated(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
