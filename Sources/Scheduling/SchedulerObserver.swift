// What the scheduler tells the outside world (metrics, the jobs table) about each job; it never imports ValetMetrics.
import Inference

/// Everything known about a job when it ends; one per job that reached the scheduler.
public struct JobSnapshot: Sendable {
    public var id: String
    public var model: String
    public var priority: Priority
    public var kind: JobKind
    /// What constrained its decoding (`none`, `json_object`, `json_schema`, `tools`).
    public var constraint: String = "none"
    public var end: JobEnd
    public var finishReason: FinishReason? { end.finishReason }
    /// What the client was told, for jobs that did not finish normally.
    public var failure: JobFailure?
    public var matchedStop: String?
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache at first admission.
    public var cachedTokens: Int
    /// Blocks the job had to take (its prompt's uncached blocks plus its generation).
    public var costBlocks: Int
    public var preemptions: Int
    /// Wall-clock unix seconds.
    public var enqueuedAt: Double
    public var admittedAt: Double?
    public var firstTokenAt: Double?
    public var finishedAt: Double
    /// Monotonic durations (seconds). Queue: from submit to first admission, or to the end if never admitted.
    public var queueSeconds: Double
    /// From first admission to the end of the prompt's prefill.
    public var prefillSeconds: Double?
    /// From the end of prefill to the end of the job.
    public var decodeSeconds: Double?
    /// From submit to the first generated token.
    public var ttftSeconds: Double?
    /// From submit to the end.
    public var totalSeconds: Double
}

/// Called from the scheduler's threads (the engine loop, or the submitting / cancelling thread); keep it quick.
/// Every method has a no-op default so an observer implements only what it needs.
public protocol SchedulerObserver: Sendable {
    /// Exactly once per job that reached `submit`, whatever the end state (rejections included).
    func jobFinished(_ job: JobSnapshot)
    /// First admission out of the lot.
    func jobAdmitted(id: String, priority: Priority, queueSeconds: Double)
    func firstToken(id: String, priority: Priority, ttftSeconds: Double)
    /// Every later token: the gap since the job's previous token.
    func tokenEmitted(id: String, priority: Priority, gapSeconds: Double)
    func jobPreempted(id: String, priority: Priority)
    /// A running sequence gave its decode row to higher-priority work, keeping its blocks (it resumes, not recomputes).
    func jobSuspended(id: String, priority: Priority)
    /// One engine step finished: sequences in it, tokens fed, monotonic seconds it took.
    func stepFinished(batchSize: Int, tokens: Int, seconds: Double)
    /// Stats changed (admission, park, finish…).
    func stateChanged(_ stats: SchedulerStats)
}

extension SchedulerObserver {
    public func jobFinished(_ job: JobSnapshot) {}
    public func jobAdmitted(id: String, priority: Priority, queueSeconds: Double) {}
    public func firstToken(id: String, priority: Priority, ttftSeconds: Double) {}
    public func tokenEmitted(id: String, priority: Priority, gapSeconds: Double) {}
    public func jobPreempted(id: String, priority: Priority) {}
    public func jobSuspended(id: String, priority: Priority) {}
    public func stepFinished(batchSize: Int, tokens: Int, seconds: Double) {}
    public func stateChanged(_ stats: SchedulerStats) {}
}
