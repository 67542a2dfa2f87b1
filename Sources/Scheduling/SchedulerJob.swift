// One job as the scheduler carries it between the lot and the engine loop (a value: whoever holds it owns it).
import Inference

struct SchedulerJob: Sendable {
    let seq: UInt64
    let request: GenerationRequest
    let onEvent: @Sendable (JobEvent) -> Void
    let costBlocks: Int
    /// The request's max_tokens, capped so prompt + max_tokens fits the context.
    let maxTokens: Int
    let enqueuedMono: Double
    let enqueuedUnix: Double
    var admittedMono: Double?
    var admittedUnix: Double?
    var prefillDoneMono: Double?
    var firstTokenMono: Double?
    var firstTokenUnix: Double?
    var lastTokenMono: Double?
    var preemptions = 0
    /// Created at first admission; survives preemption so a resumed job continues exactly where it was.
    var generation: JobProgress?
}

struct JobProgress: Sendable {
    /// Prompt followed by every generated token: what a resumed job recomputes.
    var tokens: [Int32]
    var generated = 0
    var sampler: Sampler
    var text: TextStream
    var promptLogprobsSent = false
}
