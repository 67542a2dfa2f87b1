// What `Scheduler.submit` answers at once: the job is in (a handle to cancel it) or refused (why).
import Inference

public enum Submission: Sendable {
    /// Parked or running; its events follow through `onEvent`, ending with exactly one terminal event.
    case accepted(JobHandle)
    /// Refused before it entered the lot (too large, lot full, shutting down, invalid); `onEvent` is never called.
    case rejected(JobFailure)

    public var handle: JobHandle? {
        if case .accepted(let h) = self { h } else { nil }
    }

    public var rejection: JobFailure? {
        if case .rejected(let f) = self { f } else { nil }
    }
}
