// The k largest entries of a logits row without sorting the whole vocabulary (a k-sized min-heap, one pass).

enum PartialSelection {
    /// Indices of the `k` largest values, largest first; equal values keep the lower index first.
    static func top(_ k: Int, of row: UnsafeMutableBufferPointer<Float>) -> [Int] {
        let n = row.count
        let k = Swift.min(k, n)
        guard k > 0 else { return [] }
        if k == n {
            return Array(0..<n).sorted { better($0, $1, row) }
        }
        // heap[0] is the worst kept entry; "worse" = smaller value, or equal value with a higher index.
        var heap: [Int] = []
        heap.reserveCapacity(k)
        for i in 0..<k {
            heap.append(i)
            siftUp(&heap, heap.count - 1, row)
        }
        var floor = row[heap[0]]
        for i in k..<n {
            let v = row[i]
            // Scanning in index order, an equal later value never beats a kept one, so strict > suffices.
            if v > floor {
                heap[0] = i
                siftDown(&heap, 0, row)
                floor = row[heap[0]]
            }
        }
        return heap.sorted { better($0, $1, row) }
    }

    @inline(__always)
    static func better(_ a: Int, _ b: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Bool {
        let va = row[a], vb = row[b]
        return va > vb || (va == vb && a < b)
    }

    private static func siftUp(_ h: inout [Int], _ start: Int, _ row: UnsafeMutableBufferPointer<Float>) {
        var c = start
        while c > 0 {
            let p = (c - 1) / 2
            if better(h[p], h[c], row) { h.swapAt(p, c); c = p } else { return }
        }
    }

    private static func siftDown(_ h: inout [Int], _ start: Int, _ row: UnsafeMutableBufferPointer<Float>) {
        var p = start
        let n = h.count
        while true {
            let l = 2 * p + 1, r = l + 1
            var worst = p
            if l < n && better(h[worst], h[l], row) { worst = l }
            if r < n && better(h[worst], h[r], row) { worst = r }
            if worst == p { return }
            h.swapAt(p, worst)
            p = worst
        }
    }
}
