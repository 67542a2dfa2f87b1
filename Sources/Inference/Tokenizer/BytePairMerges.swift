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
        // The rescan below is quadratic; a long unbroken run (base64, a hash, a wall of digits) must not be.
        if n > 48 { return applyLong(&symbols) }
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

    /// The same merge order kept in a min-heap of (rank, position) over a linked list: O(n log n).
    private func applyLong(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = Array(1...n)
        next[n - 1] = -1
        var prev = Array(-1..<(n - 1))
        var heap = MergeHeap<UInt64>(capacity: n)
        func push(_ left: Int) {
            guard left >= 0, next[left] >= 0 else { return }
            let r = lookup(symbols[left], symbols[next[left]]).rank
            guard r != .max else { return }
            heap.push(UInt64(r) << 32 | UInt64(left))
        }
        var alive = [Bool](repeating: true, count: n)
        for i in 0..<(n - 1) { push(i) }
        while !heap.isEmpty {
            let entry = heap.pop()
            let left = Int(entry & 0xFFFF_FFFF)
            let rank = UInt32(entry >> 32)
            // Entries go stale when a neighbour merges; a rank names exactly one pair, so a match means current.
            guard alive[left], next[left] >= 0 else { continue }
            let right = next[left]
            let (r, id) = lookup(symbols[left], symbols[right])
            guard r == rank else { continue }
            symbols[left] = id
            alive[right] = false
            next[left] = next[right]
            if next[right] >= 0 { prev[next[right]] = left }
            push(prev[left])
            push(left)
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 {
            out.append(symbols[i])
            i = next[i]
        }
        symbols = out
    }
}
