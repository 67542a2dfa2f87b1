// The one vocabulary for how a job ends. Every count of endings (live counters, /metrics, /v1/metrics, the `jobs`
// status) is derived from it, each through one mapping, so no two views can disagree.
import Inference

public enum JobEnd: Sendable, Hashable {
    /// Generated to a normal end.
    case finished(FinishReason)
    /// Refused by admission control: at submit, or pushed out of a full lot while waiting.
    case rejected(Rejection)
    /// Accepted, then ended without a normal finish.
    case failed(Failure)

    public enum Rejection: String, Sendable, CaseIterable {
        case tooLarge = "too_large"
        case queueFull = "queue_full"
        case evicted
        case shuttingDown = "shutting_down"
        case invalid
    }

    public enum Failure: String, Sendable, CaseIterable {
        case cancelled
        case queueTimeout = "queue_timeout"
        case shutdown
        case engineError = "engine_error"
    }

    /// Every end state, for tests and for creating every label set up front.
    public static let allCases: [JobEnd] =
        [.finished(.stop), .finished(.length)] + Rejection.allCases.map { .rejected($0) }
        + Failure.allCases.map { .failed($0) }

    /// How a failure ends a job. `accepted` says whether the job had entered the lot: a shutdown or an invalid
    /// request refused at the door is a rejection, the same cause after admission a failure.
    public init(_ failure: JobFailure, accepted: Bool) {
        switch failure {
        case .tooLarge: self = .rejected(.tooLarge)
        case .queueFull: self = .rejected(.queueFull)
        case .evicted: self = .rejected(.evicted)
        case .invalid: self = .rejected(.invalid)
        case .shuttingDown: self = accepted ? .failed(.shutdown) : .rejected(.shuttingDown)
        case .cancelled: self = .failed(.cancelled)
        case .queueTimeout: self = .failed(.queueTimeout)
        case .engine: self = .failed(.engineError)
        }
    }

    /// Stop or length for a normal finish, nil otherwise.
    public var finishReason: FinishReason? { if case .finished(let r) = self { r } else { nil } }

    /// The label value of this end within its family (`stop`, `queue_full`, `cancelled`, …).
    public var reason: String {
        switch self {
        case .finished(let r): r.rawValue
        case .rejected(let r): r.rawValue
        case .failed(let f): f.rawValue
        }
    }
}
