// Everything a job's client hears from the scheduler, in order; exactly one terminal event per job.
import Inference

public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    /// The token's text as raw bytes (a token may hold part of a UTF-8 character).
    public var bytes: [UInt8]
    public var logprob: Float
    public init(token: Int32, bytes: [UInt8], logprob: Float) {
        self.token = token
        self.bytes = bytes
        self.logprob = logprob
    }
}

/// One prompt token's score: its own logprob and the most likely tokens at that position (best first; empty unless
/// the request asked for alternatives).
public struct PromptTokenLogprob: Sendable, Equatable {
    public var token: TokenLogprob
    public var top: [TokenLogprob]
    public init(token: TokenLogprob, top: [TokenLogprob] = []) {
        self.token = token
        self.top = top
    }
}

public struct GeneratedToken: Sendable, Equatable {
    public var token: Int32
    /// Text that became complete with this token (UTF-8 safe, stop strings held back); may be empty.
    public var text: String
    /// Present when the request asked for logprobs.
    public var logprob: TokenLogprob?
    public var topLogprobs: [TokenLogprob]
    public init(token: Int32, text: String, logprob: TokenLogprob? = nil, topLogprobs: [TokenLogprob] = []) {
        self.token = token
        self.text = text
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

public enum FinishReason: String, Sendable, CaseIterable {
    /// End-of-generation token or a stop string.
    case stop
    /// max_tokens reached (or the context filled).
    case length
}

public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV was found in the prefix cache (OpenAI's `prompt_tokens_details.cached_tokens`).
    public var cachedTokens: Int
    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
    }
}

public enum JobFailure: Error, Sendable, Equatable {
    /// Costs more blocks than the whole capacity (HTTP 400).
    case tooLarge(costBlocks: Int, capacityBlocks: Int)
    /// The lot is full (HTTP 429).
    case queueFull(retryAfterSeconds: Int)
    /// Pushed out of a full lot by a higher-priority arrival (HTTP 429).
    case evicted(retryAfterSeconds: Int)
    /// Waited longer than its queue timeout (HTTP 503, type `queue_timeout`).
    case queueTimeout(waitedSeconds: Double)
    /// The client went away or asked to stop.
    case cancelled
    /// The server is shutting down (HTTP 503).
    case shuttingDown
    /// The request cannot be served as sent, e.g. an empty prompt (HTTP 400).
    case invalid(String)
    /// The engine failed (HTTP 500: the server itself is broken).
    case engine(String)
}

public enum JobEvent: Sendable {
    /// Left the lot; blocks reserved.
    case admitted
    /// Logprobs of the prompt tokens (index 0 has none), sent once after prefill when asked for.
    case promptLogprobs([PromptTokenLogprob?])
    case token(GeneratedToken)
    /// An embedding job's pooled, L2-normalized vector, sent once after prefill, just before `.finished`.
    case embedding([Float])
    /// Terminal: generation ended normally.
    case finished(FinishReason, Usage)
    /// Terminal: the job ended without a normal finish.
    case failed(JobFailure)
}
