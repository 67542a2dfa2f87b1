// One unit of work handed to the scheduler: a tokenized prompt and how to continue it.
import Inference

public enum Priority: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case low = 0, normal, high, critical

    public init?(name: String) {
        switch name.lowercased() {
        case "low": self = .low
        case "normal": self = .normal
        case "high": self = .high
        case "critical": self = .critical
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        case .critical: "critical"
        }
    }

    public static func < (a: Priority, b: Priority) -> Bool { a.rawValue < b.rawValue }
}

public struct GenerationRequest: Sendable {
    /// The id the client sees (`chatcmpl-…`, `cmpl-…`); unique per job, also the `jobs` row key.
    public var id: String
    public var model: String
    public var promptTokens: [Int32]
    /// May be 0 (prompt scoring only).
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Stop strings; matched across token boundaries and never included in the output.
    public var stop: [String]
    public var priority: Priority
    /// Seconds a job may wait in the lot; nil uses the scheduler's default.
    public var queueTimeout: Double?
    /// Top-N alternatives per generated token; nil means no logprobs at all, 0 means only the chosen token's.
    public var logprobs: Int?
    /// Also return the logprob of every prompt token (after the first), for scoring.
    public var promptLogprobs: Bool
    /// Enters the hash of the prompt's first KV block, so only requests with the same salt share cached blocks (and
    /// no one else can time a hit on them); nil shares with every unsalted request.
    public var cacheSalt: String?
    /// Set for an embedding job: the prompt is prefilled (max_tokens 0) and its final hidden states pooled into
    /// one `.embedding` event before `.finished`.
    public var embedding: Pooling?
    public var kind: JobKind
    /// Constrained decoding (structured output, tool calls): each job starts from this value and advances its own
    /// copy; nil leaves decoding untouched.
    public var constraint: (any TokenConstraint)?
    /// What the constraint is, for the `jobs` row: `none`, `json_object`, `json_schema` or `tools`.
    public var constraintKind: String = "none"

    public init(
        id: String, model: String, promptTokens: [Int32], maxTokens: Int,
        sampling: SamplingParameters = SamplingParameters(), stop: [String] = [],
        priority: Priority = .normal, queueTimeout: Double? = nil,
        logprobs: Int? = nil, promptLogprobs: Bool = false, cacheSalt: String? = nil, embedding: Pooling? = nil,
        kind: JobKind = .completion
    ) {
        self.id = id
        self.model = model
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.priority = priority
        self.queueTimeout = queueTimeout
        self.logprobs = logprobs
        self.promptLogprobs = promptLogprobs
        self.cacheSalt = cacheSalt
        self.embedding = embedding
        self.kind = embedding == nil ? kind : .embedding
    }
}
