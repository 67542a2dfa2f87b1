// A fixed-bucket histogram updated with atomics only, for observations on the token hot path.
import Locks

/// Counts observations into fixed buckets without taking a lock. Valet keeps its own because swift-prometheus 2.4.1's
/// `Histogram.record` takes a lock and walks every bucket per observation, and `tokenEmitted` runs for every token of
/// every sequence in a batched step. The count is derived from the buckets when read, so `+Inf` always equals `_count`.
final class AtomicHistogram: Sendable {
    let bounds: [Double]
    // Non-cumulative bucket counts, the overflow (+Inf only) bucket, then the sum as a Double bit pattern.
    private let counters: AtomicCounters

    init(bounds: [Double]) {
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 },
                     "histogram bounds must be increasing")
        self.bounds = bounds
        counters = AtomicCounters(count: bounds.count + 2)
    }

    func observe(_ value: Double) {
        guard !value.isNaN else { return }
        // Binary search for the first bound >= value (Prometheus buckets are "less than or equal").
        var low = 0
        var high = bounds.count
        while low < high {
            let mid = (low + high) / 2
            if bounds[mid] < value { low = mid + 1 } else { high = mid }
        }
        counters.add(low)
        counters.addDouble(bounds.count + 1, value)
    }

    struct Snapshot {
        /// Non-cumulative, one per bound plus the overflow bucket.
        var buckets: [UInt64]
        var count: UInt64
        var sum: Double
    }

    func snapshot() -> Snapshot {
        let buckets = (0...bounds.count).map { counters.load($0) }
        return Snapshot(buckets: buckets, count: buckets.reduce(0, +), sum: counters.loadDouble(bounds.count + 1))
    }
}
