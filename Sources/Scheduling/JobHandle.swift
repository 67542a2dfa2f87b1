// An accepted job's handle: its id and the way to cancel it (client disconnect).
import Inference

public struct JobHandle: Sendable {
    public let id: String
    let seq: UInt64
    private let cancelAction: @Sendable (UInt64) -> Void

    init(id: String, seq: UInt64, cancel: @escaping @Sendable (UInt64) -> Void) {
        self.id = id
        self.seq = seq
        cancelAction = cancel
    }

    /// Ends the job with `.failed(.cancelled)` wherever it is (parked: at once, on this thread; running: between
    /// steps). Harmless after the job has ended. Don't call it holding a lock that `onEvent` takes.
    public func cancel() { cancelAction(seq) }
}
