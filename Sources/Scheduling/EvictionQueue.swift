// Cached blocks no sequence references, oldest release first: a doubly linked list over block ids, so taking a
// block back on a hit and evicting the oldest are both O(1).

struct EvictionQueue: Sendable {
    private var next: [Int32]
    private var prev: [Int32]
    private var queued: [Bool]
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        next = Array(repeating: -1, count: capacity)
        prev = Array(repeating: -1, count: capacity)
        queued = Array(repeating: false, count: capacity)
    }

    func contains(_ b: Int32) -> Bool { queued[Int(b)] }

    /// Newest at the tail: evicted last.
    mutating func append(_ b: Int32) {
        precondition(!queued[Int(b)], "block \(b) queued twice")
        queued[Int(b)] = true
        prev[Int(b)] = tail
        next[Int(b)] = -1
        if tail >= 0 { next[Int(tail)] = b } else { head = b }
        tail = b
        count += 1
    }

    mutating func remove(_ b: Int32) {
        guard queued[Int(b)] else { return }
        let p = prev[Int(b)], n = next[Int(b)]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { prev[Int(n)] = p } else { tail = p }
        queued[Int(b)] = false
        count -= 1
    }

    /// The least recently released block, taken out.
    mutating func popOldest() -> Int32? {
        guard head >= 0 else { return nil }
        let b = head
        remove(b)
        return b
    }

    /// Oldest first (tests).
    var ordered: [Int32] {
        var out: [Int32] = []
        var b = head
        while b >= 0 {
            out.append(b)
            b = next[Int(b)]
        }
        return out
    }
}
