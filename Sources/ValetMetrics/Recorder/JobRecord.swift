// One row of the `jobs` table: how a request that reached the scheduler ended, with its timestamps.

/// Everything recorded about one job, written once when it reaches its terminal state.
/// Timestamps are unix seconds; the optional ones are nil when the job never got that far.
public struct JobRecord: Sendable, Equatable {
    /// How the job ended. Every job ends in exactly one status, so the success, failure and rejection counters
    /// of `/metrics` partition the `jobs` table.
    public enum Status: String, Sendable, CaseIterable {
        /// Generated to a normal end; `finishReason` says `stop` or `length`.
        case completed
        /// Rejected at admission: costs more blocks than the whole capacity (HTTP 400).
        case tooLarge = "too_large"
        /// Rejected at admission: the lot was full (HTTP 429).
        case queueFull = "queue_full"
        /// Pushed out of a full lot by a higher-priority arrival (HTTP 429).
        case evicted
        /// Rejected at admission: the server was shutting down (HTTP 503).
        case shuttingDown = "shutting_down"
        /// Rejected at admission: the request cannot be served as sent, e.g. an empty prompt (HTTP 400).
        case invalid
        /// Waited longer than its queue timeout (HTTP 503).
        case queueTimeout = "queue_timeout"
        /// The client went away or asked to stop.
        case cancelled
        /// The server shut down before the job finished.
        case shutdown
        /// The engine failed.
        case engineError = "engine_error"

        /// Refused by admission control (counted in `valet_admission_rejections_total`).
        public var isRejection: Bool {
            [.tooLarge, .queueFull, .evicted, .shuttingDown, .invalid].contains(self)
        }
        /// Ended without a normal finish after admission was not refused (`valet_request_failures_total`).
        public var isFailure: Bool { self != .completed && !isRejection }
    }

    /// The id the client received (`chatcmpl-…`); primary key.
    public var id: String
    public var model: String
    /// `low`, `normal`, `high` or `critical`.
    public var priority: String
    public var status: Status
    /// `stop` or `length` for completed jobs, nil otherwise.
    @ExplicitNull public var finishReason: String?
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from the prefix cache (0 in rows written before the column existed).
    public var cachedTokens: Int
    /// Blocks the job took: its prompt's uncached blocks plus its generation.
    public var costBlocks: Int
    public var enqueuedAt: Double
    @ExplicitNull public var admittedAt: Double?
    @ExplicitNull public var firstTokenAt: Double?
    public var finishedAt: Double
    /// A short human-readable message for failed or rejected jobs.
    @ExplicitNull public var error: String?
    /// The endpoint the job served: `completion`, `chat`, `embedding` or `response`.
    public var kind: String
    /// What constrained the decoding: `none`, `json_object`, `json_schema` or `tools`.
    public var constraint: String

    public init(
        id: String, model: String, priority: String, status: Status, finishReason: String? = nil,
        promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0, costBlocks: Int,
        enqueuedAt: Double, admittedAt: Double? = nil, firstTokenAt: Double? = nil, finishedAt: Double,
        error: String? = nil, kind: String = "completion", constraint: String = "none"
    ) {
        self.id = id
        self.model = model
        self.priority = priority
        self.status = status
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.costBlocks = costBlocks
        self.enqueuedAt = enqueuedAt
        self.admittedAt = admittedAt
        self.firstTokenAt = firstTokenAt
        self.finishedAt = finishedAt
        self.error = error
        self.kind = kind
        self.constraint = constraint
    }
}

extension JobRecord.Status: Codable {}

/// JSON shape of `GET /v1/jobs/{id}`: snake_case keys matching the `jobs` columns; absent values are `null`
/// (`ExplicitNull`).
extension JobRecord: Codable {
    enum CodingKeys: String, CodingKey {
        case id, model, priority, status, error, kind, constraint
        case finishReason = "finish_reason"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case cachedTokens = "cached_tokens"
        case costBlocks = "cost_blocks"
        case enqueuedAt = "enqueued_at"
        case admittedAt = "admitted_at"
        case firstTokenAt = "first_token_at"
        case finishedAt = "finished_at"
    }
}
