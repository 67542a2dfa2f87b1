// The ranked merge table of a byte-level BPE vocabulary, applied to one pre-token at a time.

struct BytePairMerges: Sendable {
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    private let table: [UInt64: UInt64]

    init(merges: [String], ids: [String: Int32]) {
        var t: [UInt64: UInt64] = [:]
        t.reserveCapacity(merges.count)
        for (rank, line) in merges.enumerated() {
            // The separator is the first space after the first character: byte-level tokens hold no spaces.
            let scalars = line.unicodeScalars
            guard !scalars.isEmpty,
                  let sep = scalars[scalars.index(after: scalars.startIndex)...].firstIndex(of: " ")
            else { continue }
            let left = String(scalars[..<sep])
            let right = String(scalars[scalars.index(after: sep)...])
            guard let l = ids[left], let r = ids[right], let m = ids[left + right] else { continue }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if t[key] == nil { t[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m)) }
        }
        table = t
    }

    var count: Int { table.count }

    @inline(__always)
    private func lookup(_ l: Int32, _ r: Int32) -> (rank: UInt32, id: Int32) {
        guard l >= 0, r >= 0,
              let v = table[UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))]
        else { return (.max, -1) }
        return (UInt32(truncatingIfNeeded: v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
    }

    /// Merges `symbols` in place: always the lowest-ranked adjacent pair, the leftmost on a tie.
    /// `ranks`/`merged` are scratch buffers kept by the caller to avoid allocating per word.
    func apply(_ symbols: inout [Int32], ranks: inout [UInt32], merged: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        ranks.removeAll(keepingCapacity: true)
        merged.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            let (r, m) = lookup(symbols[i], symbols[i + 1])
            ranks.append(r)
            merged.append(m)
        }
        while symbols.count > 1 {
            var best = 0
            var bestRank = UInt32.max
            for i in 0..<ranks.count where ranks[i] < bestRank {
                bestRank = ranks[i]
                best = i
            }
            if bestRank == .max { break }
            symbols[best] = merged[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            merged.remove(at: best)
            if best > 0 {
                let (r, m) = lookup(symbols[best - 1], symbols[best])
                ranks[best - 1] = r
                merged[best - 1] = m
            }
            if best < symbols.count - 1 {
                let (r, m) = lookup(symbols[best], symbols[best + 1])
                ranks[best] = r
                merged[best] = m
            }
        }
    }
}
