// Per-lock wait statistics (a fixed-bucket histogram, sum and count) kept in atomics so recording never locks.

/// How long contended acquisitions of one named lock waited. One instance per lock name, shared by every
/// `InstrumentedLock` created with that name and kept for the life of the process.
public final class LockWaitStatistics: Sendable {
    /// Upper bucket bounds in nanoseconds: 100 ns to 1 s on a 1-2.5-5 series.
    static let boundsNanoseconds: [UInt64] = [
        100, 250, 500,
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000,
    ]
    /// Bucket upper bounds in seconds, for exposition.
    public static let bucketBoundsSeconds: [Double] = boundsNanoseconds.map { Double($0) / 1e9 }

    private static let overflowSlot = boundsNanoseconds.count
    private static let sumSlot = overflowSlot + 1
    private static let sequenceSlot = overflowSlot + 2

    public let name: String
    // Non-cumulative bucket counts, the overflow bucket, the sum of waits in nanoseconds, a sequence number.
    private let counters = AtomicCounters(count: boundsNanoseconds.count + 3)

    init(name: String) {
        self.name = name
    }

    /// Adds one contended wait; returns how many waits this lock has recorded so far (drives 1-in-N sampling).
    @discardableResult
    func recordWait(nanoseconds: UInt64) -> UInt64 {
        let bounds = Self.boundsNanoseconds
        var slot = Self.overflowSlot
        for i in bounds.indices where nanoseconds <= bounds[i] {
            slot = i
            break
        }
        counters.add(slot)
        counters.add(Self.sumSlot, nanoseconds)
        return counters.addReturningNew(Self.sequenceSlot)
    }

    /// A consistent-enough copy for exposition: the count is derived from the buckets, so `+Inf` always equals it.
    public func snapshot() -> LockWaitSnapshot {
        let raw = counters.loadAll()
        let buckets = Array(raw[0...Self.overflowSlot])
        return LockWaitSnapshot(
            name: name,
            bucketCounts: buckets,
            count: buckets.reduce(0, +),
            sumSeconds: Double(raw[Self.sumSlot]) / 1e9
        )
    }
}

/// A point-in-time copy of one lock's wait histogram.
public struct LockWaitSnapshot: Sendable, Equatable {
    public var name: String
    /// Non-cumulative counts per bucket of `LockWaitStatistics.bucketBoundsSeconds`, plus a last overflow bucket.
    public var bucketCounts: [UInt64]
    /// Number of contended acquisitions (uncontended ones are not timed at all).
    public var count: UInt64
    public var sumSeconds: Double
}
