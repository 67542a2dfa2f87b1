// A `Mutex` that times contended acquisitions: the free path is one try-lock, only waiting threads read a clock.
import Synchronization

/// Guards shared hot-path state like `Synchronization.Mutex`, and records how long contended acquisitions waited
/// into the named lock's `LockWaitStatistics` (and, for notable waits, the sink set with
/// `InstrumentedLocks.setWaitSampleSink`). An uncontended acquire is a try-lock and nothing else.
public final class InstrumentedLock<State: ~Copyable>: Sendable {
    @usableFromInline let mutex: Locked<State>
    @usableFromInline let statistics: LockWaitStatistics

    /// - Parameter name: a short, fixed label value (`scheduler`, `streams`, `kv_pool`, `recorder`, ...).
    public init(name: String, _ initial: consuming sending State) {
        mutex = Locked(initial)
        statistics = InstrumentedLocks.statistics(named: name)
    }

    public var name: String { statistics.name }

    /// Runs `body` with exclusive access to the state, like `Mutex.withLock`. Keep `body` short and free of I/O.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        switch try mutex.withLockIfAvailable(body) {
        case .some(let result): return result
        case .none: return try withLockContended(body)
        }
    }

    /// Runs `body` only if the lock is free right now; never waits and records nothing.
    @inlinable
    public func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        try mutex.withLockIfAvailable(body)
    }

    @usableFromInline
    func withLockContended<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let start = MetricsClock.monotonicNanoseconds()
        var waited: UInt64 = 0
        // Runs after `mutex.withLock` has returned, so the lock is already released when samples are delivered.
        defer { noteWait(nanoseconds: waited) }
        return try mutex.withLock { (state: inout sending State) throws(E) -> sending Result in
            waited = MetricsClock.monotonicNanoseconds() &- start
            return try body(&state)
        }
    }

    @usableFromInline
    func noteWait(nanoseconds: UInt64) {
        let sequence = statistics.recordWait(nanoseconds: nanoseconds)
        InstrumentedLocks.deliver(lock: statistics.name, waitedNanoseconds: nanoseconds, sequence: sequence)
    }
}
