// Hands out physical KV block ids from the shared pool and takes each back exactly once.
import Inference

struct BlockAllocator: Sendable {
    let total: Int
    private var free: [Int32]
    private var inUse: [Bool]
    /// Releases of a block that was not out: a bookkeeping bug, counted so tests can assert it never happens.
    private(set) var doubleReleases = 0

    init(total: Int) {
        self.total = total
        // Low ids first, so small tests see predictable tables.
        free = (0..<Int32(total)).reversed()
        inUse = Array(repeating: false, count: total)
    }

    var available: Int { free.count }

    mutating func allocate(_ count: Int) -> [Int32]? {
        guard count <= free.count else { return nil }
        var out: [Int32] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let b = free.removeLast()
            inUse[Int(b)] = true
            out.append(b)
        }
        return out
    }

    mutating func release(_ blocks: [Int32]) {
        for b in blocks {
            guard b >= 0, Int(b) < total, inUse[Int(b)] else {
                doubleReleases += 1
                continue
            }
            inUse[Int(b)] = false
            free.append(b)
        }
    }
}
