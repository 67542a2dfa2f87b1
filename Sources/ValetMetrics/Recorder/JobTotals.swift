// All-time job counts and token sums, read from an aggregate table kept by the writer (never a scan of `jobs`).

public struct JobTotals: Sendable, Equatable {
    public var jobs: Int = 0
    public var promptTokens: Int = 0
    public var completionTokens: Int = 0
    /// Prompt tokens served from the prefix cache.
    public var cachedTokens: Int = 0
    /// Jobs per `JobRecord.Status` raw value.
    public var byStatus: [String: Int] = [:]
    /// Completed jobs per finish reason (`stop`, `length`).
    public var byFinishReason: [String: Int] = [:]

    public init() {}
}

extension JobTotals: Codable {
    enum CodingKeys: String, CodingKey {
        case jobs
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case cachedTokens = "cached_tokens"
        case byStatus = "by_status"
        case byFinishReason = "by_finish_reason"
    }
}
