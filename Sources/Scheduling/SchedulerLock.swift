// The one lock around the scheduler's shared state: ValetMetrics' InstrumentedLock named "scheduler", so contended
// waits show up in the lock metrics; wrapped so the rest of the scheduler sees one small API.
import Inference
import Locks

final class SchedulerLock<State: Sendable>: Sendable {
    private let lock: InstrumentedLock<State>

    init(_ state: State) {
        lock = InstrumentedLock(name: "scheduler", state)
    }

    /// Held briefly: never across a model step, an event callback or an observer call.
    func withLock<R: Sendable>(_ body: (inout State) -> R) -> R {
        lock.withLock { body(&$0) }
    }
}
