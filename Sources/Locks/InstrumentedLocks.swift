// Process-wide registry of instrumented lock names and the sink that receives notable wait samples.
import Synchronization

/// Every lock name ever registered, with its statistics, and the one sink for individual wait samples.
public enum InstrumentedLocks {
    /// Names that exist from startup so `valet_lock_wait_seconds{lock}` shows them at 0 before any contention.
    public static let preregisteredNames = ["kv_pool", "recorder", "scheduler", "streams"]

    private static let registry = Locked<[String: LockWaitStatistics]>(
        Dictionary(uniqueKeysWithValues: preregisteredNames.map { ($0, LockWaitStatistics(name: $0)) }))

    /// The statistics for `name`, created on first use. Locks sharing a name share statistics.
    public static func statistics(named name: String) -> LockWaitStatistics {
        registry.withLock { table in
            if let existing = table[name] { return existing }
            let created = LockWaitStatistics(name: name)
            table[name] = created
            return created
        }
    }

    /// A snapshot of every registered lock, sorted by name (stable exposition order).
    public static func snapshots() -> [LockWaitSnapshot] {
        let all = registry.withLock { Array($0.values) }
        return all.map { $0.snapshot() }.sorted { $0.name < $1.name }
    }

    // MARK: Sample sink

    final class Sink: Sendable {
        let thresholdNanoseconds: UInt64
        let sampleEvery: UInt64
        let handler: @Sendable (LockWaitSample) -> Void
        init(thresholdNanoseconds: UInt64, sampleEvery: UInt64, handler: @escaping @Sendable (LockWaitSample) -> Void) {
            self.thresholdNanoseconds = thresholdNanoseconds
            self.sampleEvery = sampleEvery
            self.handler = handler
        }
    }

    // The current sink as a retained pointer's bits (0 = none). Read on every contended acquisition, so it is an
    // atomic rather than a lock. Replaced sinks are deliberately never released: a contended thread may still be
    // calling one, and there are only ever a handful.
    private static let sinkBits = Atomic<UInt>(0)

    /// Installs the sink for individual wait samples: every contended wait of at least `thresholdSeconds`, plus every
    /// `sampleEvery`-th of the others. The handler runs on the thread that waited, after it released the lock, and
    /// must never block (the recorder only try-locks its buffer and counts a drop otherwise). Replaces any previous sink.
    public static func setWaitSampleSink(
        thresholdSeconds: Double = 0.000_1,
        sampleEvery: Int = 64,
        _ handler: @escaping @Sendable (LockWaitSample) -> Void
    ) {
        let sink = Sink(
            thresholdNanoseconds: UInt64(max(0, thresholdSeconds) * 1e9),
            sampleEvery: UInt64(max(1, sampleEvery)),
            handler: handler)
        let bits = UInt(bitPattern: Unmanaged.passRetained(sink).toOpaque())
        sinkBits.store(bits, ordering: .releasing)
    }

    /// Stops delivering samples (the statistics keep counting).
    public static func removeWaitSampleSink() {
        sinkBits.store(0, ordering: .releasing)
    }

    static func deliver(lock: String, waitedNanoseconds: UInt64, sequence: UInt64) {
        let bits = sinkBits.load(ordering: .acquiring)
        guard bits != 0, let raw = UnsafeRawPointer(bitPattern: bits) else { return }
        let sink = Unmanaged<Sink>.fromOpaque(raw).takeUnretainedValue()
        guard waitedNanoseconds >= sink.thresholdNanoseconds || sequence % sink.sampleEvery == 0 else { return }
        sink.handler(LockWaitSample(
            time: MetricsClock.unixSeconds(), lock: lock, waitSeconds: Double(waitedNanoseconds) / 1e9))
    }
}
