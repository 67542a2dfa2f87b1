// Decides when the scheduler's load becomes a `queue_samples` row: every interval, and on change at most every
// 100 ms, so bursts of state changes cost at most ten rows a second.
import Locks
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Feed it the scheduler's state on every change (`observe`) and call `tick()` every ~100 ms (or let `start()`
/// run a small thread that does); it records a sample when the state changed and the last sample is at least
/// `minimumSpacing` old, and at least once per `interval` regardless.
public final class QueueSampler: Sendable {
    struct Load: Equatable {
        var queued: Int
        var running: Int
        var usedBlocks: Int
        var totalBlocks: Int
        var cachedBlocks = 0
    }

    struct Policy {
        let interval: Double
        let minimumSpacing: Double
        var latest: Load?
        var lastRecorded: Load?
        var lastTime = -Double.infinity

        /// The sample to record at `now`, if any, for the latest known load.
        mutating func decide(now: Double, periodic: Bool) -> QueueSample? {
            guard let load = latest else { return nil }
            let age = now - lastTime
            let changed = load != lastRecorded
            guard (changed && age >= minimumSpacing) || (periodic && age >= interval) else { return nil }
            lastRecorded = load
            lastTime = now
            return QueueSample(
                time: now, queued: load.queued, running: load.running,
                usedBlocks: load.usedBlocks, totalBlocks: load.totalBlocks, cachedBlocks: load.cachedBlocks)
        }
    }

    private let recorder: Recorder
    private let policy: Locked<Policy>
    private let ticker = Locked<WorkerThread?>(nil)
    private let stopping = Atomic<Bool>(false)

    /// - Parameters:
    ///   - interval: seconds between samples when nothing changes (`--sample-interval`, default 1).
    ///   - minimumSpacing: least seconds between two samples (default 0.1).
    public init(recorder: Recorder, interval: Double = 1, minimumSpacing: Double = 0.1) {
        self.recorder = recorder
        policy = Locked(Policy(interval: max(interval, 0.01), minimumSpacing: max(minimumSpacing, 0)))
    }

    deinit {
        stop()
    }

    /// The scheduler's current load; call it whenever any of these values change. Never blocks on I/O.
    public func observe(queued: Int, running: Int, usedBlocks: Int, totalBlocks: Int, cachedBlocks: Int = 0) {
        let load = Load(queued: queued, running: running, usedBlocks: usedBlocks, totalBlocks: totalBlocks,
                        cachedBlocks: cachedBlocks)
        if let sample = observe(load, now: MetricsClock.unixSeconds()) { recorder.record(sample) }
    }

    /// Records a held-back change or the periodic sample when due. Call every ~100 ms.
    public func tick() {
        if let sample = tick(now: MetricsClock.unixSeconds()) { recorder.record(sample) }
    }

    /// Starts a background thread calling `tick()` every `minimumSpacing` (at least 10 ms) until `stop()`.
    public func start() throws(RecorderError) {
        let period = policy.withLock { max($0.minimumSpacing, 0.01) }
        try ticker.withLock { (thread: inout WorkerThread?) throws(RecorderError) in
            guard thread == nil else { return }
            stopping.store(false, ordering: .relaxed)
            thread = try WorkerThread { [weak self] in
                while let sampler = self, !sampler.stopping.load(ordering: .relaxed) {
                    sampler.tick()
                    usleep(useconds_t(period * 1e6))
                }
            }
        }
    }

    /// Stops the thread started by `start()`.
    public func stop() {
        let thread = ticker.withLock { (thread: inout WorkerThread?) -> WorkerThread? in
            defer { thread = nil }
            return thread
        }
        stopping.store(true, ordering: .relaxed)
        thread?.join()
    }

    // Deterministic cores, for tests.
    func observe(_ load: Load, now: Double) -> QueueSample? {
        policy.withLock { policy in
            policy.latest = load
            return policy.decide(now: now, periodic: false)
        }
    }

    func tick(now: Double) -> QueueSample? {
        policy.withLock { $0.decide(now: now, periodic: true) }
    }
}
