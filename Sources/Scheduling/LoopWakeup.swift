// Lets the engine loop sleep when idle and be woken by a submit, cancel or shutdown without lost wake-ups.
import Inference
import Dispatch
import Synchronization

final class LoopWakeup: Sendable {
    private let posted = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func signal() {
        // At most one outstanding post; the loop rechecks all state after every wake, so coalescing is safe.
        if !posted.exchange(true, ordering: .acquiringAndReleasing) {
            semaphore.signal()
        }
    }

    /// Sleeps until signalled or `timeout` seconds pass (nil: until signalled).
    func wait(timeout: Double?) {
        if let timeout {
            _ = semaphore.wait(timeout: .now() + .nanoseconds(Int(Swift.max(0, timeout) * 1e9)))
        } else {
            semaphore.wait()
        }
        posted.store(false, ordering: .releasing)
    }
}
