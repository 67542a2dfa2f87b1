// A binary min-heap for the tokenizers' merge queues (both BPE flavours pop the best pending merge first).

struct MergeHeap<Element: Comparable> {
    private var items: [Element] = []

    init(capacity: Int) { items.reserveCapacity(capacity) }

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ element: Element) {
        items.append(element)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard items[c] < items[p] else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> Element {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
