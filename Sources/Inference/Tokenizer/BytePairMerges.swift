// The ranked merge table of a byte-level BPE vocabulary, applied to one pre-token at a time.

struct BytePairMerges: Sendable {
    // An open-addressing table keyed by the id pair: this lookup is the inner loop of encoding, and a
    // multiplicative hash is several times cheaper here than Dictionary's seeded SipHash.
    /// (left id << 32 | right id), or `empty`.
    private let keys: [UInt64]
    /// (rank << 32 | merged id) for the key in the same slot.
    private let values: [UInt64]
    private let shift: UInt64
    private static let empty = UInt64.max
    let count: Int

    init(merges: [String], ids: [String: Int32]) {
        var pairs: [(UInt64, UInt64)] = []
        pairs.reserveCapacity(merges.count)
        for (rank, line) in merges.enumerated() {
            // The separator is the first space after the first character: byte-level tokens hold no spaces.
            let scalars = line.unicodeScalars
            guard !scalars.isEmpty,
                  let sep = scalars[scalars.index(after: scalars.startIndex)...].firstIndex(of: " ")
            else { continue }
            let left = String(scalars[..<sep])
            let right = String(scalars[scalars.index(after: sep)...])
            guard let l = ids[left], let r = ids[right], let m = ids[left + right] else { continue }
            pairs.append((UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r)),
                          UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m))))
        }
        var bits: UInt64 = 4
        while (1 << bits) < pairs.count * 2 { bits += 1 }
        let capacity = 1 << Int(bits)
        var k = [UInt64](repeating: Self.empty, count: capacity)
        var v = [UInt64](repeating: 0, count: capacity)
        let shift = 64 - bits
        var stored = 0
        for (key, value) in pairs {
            var slot = Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while k[slot] != Self.empty && k[slot] != key { slot = (slot + 1) & (capacity - 1) }
            // A repeated pair keeps its first (lowest) rank.
            if k[slot] == Self.empty {
                k[slot] = key
                v[slot] = value
                stored += 1
            }
        }
        keys = k
        values = v
        self.shift = shift
        count = stored
    }

    @inline(__always)
    private func lookup(_ l: Int32, _ r: Int32) -> (rank: UInt32, id: Int32) {
        guard l >= 0, r >= 0 else { return (.max, -1) }
        let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
        let mask = keys.count - 1
        var slot = Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let k = keys[slot]
            if k == key {
                let v = values[slot]
                return (UInt32(truncatingIfNeeded: v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
            }
            if k == Self.empty { return (.max, -1) }
            slot = (slot + 1) & mask
        }
    }

    /// Merges `symbols` in place: always the lowest-ranked adjacent pair, the leftmost on a tie.
    /// `ranks`/`merged` are scratch buffers kept by the caller to avoid allocating per word.
    func apply(_ symbols: inout [Int32], ranks: inout [UInt32], merged: inout [Int32]) {
        var n = symbols.count
        guard n > 1 else { return }
        ranks.removeAll(keepingCapacity: true)
        merged.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            let (r, m) = lookup(symbols[i], symbols[i + 1])
            ranks.append(r)
            merged.append(m)
        }
        symbols.withUnsafeMutableBufferPointer { sym in
            ranks.withUnsafeMutableBufferPointer { rank in
                merged.withUnsafeMutableBufferPointer { result in
                    while n > 1 {
                        var best = 0
                        var bestRank = UInt32.max
                        for i in 0..<(n - 1) where rank[i] < bestRank {
                            bestRank = rank[i]
                            best = i
                        }
                        if bestRank == .max { break }
                        sym[best] = result[best]
                        var j = best + 1
                        while j < n - 1 {
                            sym[j] = sym[j + 1]
                            j += 1
                        }
                        j = best
                        while j < n - 2 {
                            rank[j] = rank[j + 1]
                            result[j] = result[j + 1]
                            j += 1
                        }
                        n -= 1
                        if best > 0 {
                            (rank[best - 1], result[best - 1]) = lookup(sym[best - 1], sym[best])
                        }
                        if best < n - 1 {
                            (rank[best], result[best]) = lookup(sym[best], sym[best + 1])
                        }
                    }
                }
            }
        }
        symbols.removeLast(symbols.count - n)
    }
}
