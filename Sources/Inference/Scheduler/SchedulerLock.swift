// The one lock around the scheduler's shared state: a thin wrapper so an instrumented lock can replace the Mutex here.
import Synchronization

final class SchedulerLock<State: Sendable>: Sendable {
    private let mutex: Mutex<State>

    init(_ state: State) {
        mutex = Mutex(state)
    }

    /// Held briefly: never across a model step, an event callback or an observer call.
    func withLock<R: Sendable>(_ body: (inout State) -> R) -> R {
        mutex.withLock { body(&$0) }
    }
}
