// A fixed-size array of atomic counters; `Atomic` is non-copyable, so it cannot live in a Swift Array.
import Synchronization

/// Fixed-length counters updated lock-free. The storage is never freed: every instance in Valet lives for the
/// whole process (a registered lock's statistics, a histogram of the metrics registry).
package final class AtomicCounters: @unchecked Sendable {
    // @unchecked: the pointer is written only in init; afterwards every access goes through Atomic.
    private let base: UnsafeMutablePointer<Atomic<UInt64>>
    package let count: Int

    package init(count: Int) {
        self.count = count
        base = .allocate(capacity: count)
        for i in 0..<count { (base + i).initialize(to: Atomic(0)) }
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inline(__always)
    package func add(_ index: Int, _ amount: UInt64 = 1) {
        (base + index).pointee.wrappingAdd(amount, ordering: .relaxed)
    }

    /// Adds and returns the new value.
    @inline(__always)
    package func addReturningNew(_ index: Int, _ amount: UInt64 = 1) -> UInt64 {
        (base + index).pointee.wrappingAdd(amount, ordering: .relaxed).newValue
    }

    @inline(__always)
    package func load(_ index: Int) -> UInt64 {
        (base + index).pointee.load(ordering: .relaxed)
    }

    package func loadAll() -> [UInt64] {
        (0..<count).map { load($0) }
    }

    /// Adds a Double kept as its bit pattern (compare-and-swap loop; contention here is rare).
    package func addDouble(_ index: Int, _ amount: Double) {
        let slot = base + index
        var old = slot.pointee.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + amount).bitPattern
            let (exchanged, current) = slot.pointee.compareExchange(
                expected: old, desired: new, ordering: .relaxed)
            if exchanged { return }
            old = current
        }
    }

    package func loadDouble(_ index: Int) -> Double {
        Double(bitPattern: load(index))
    }
}
