// OpenAI response bodies (whole and streamed chunks), with the explicit nulls clients expect.
import HTTPServer
import Scheduling
import Foundation
import Inference

public struct UsageBody: Encodable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from the prefix cache (`prompt_tokens_details.cached_tokens`, which LangChain and
    /// LiteLLM read).
    public var cachedTokens: Int = 0
    public var totalTokens: Int { promptTokens + completionTokens }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }

    enum DetailKeys: String, CodingKey {
        case cachedTokens = "cached_tokens"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
        var details = c.nestedContainer(keyedBy: DetailKeys.self, forKey: .promptTokensDetails)
        try details.encode(cachedTokens, forKey: .cachedTokens)
    }
}

/// Logprobs can be -inf (a banned token); JSON can't carry that, so use OpenAI's floor value.
func finite(_ x: Float) -> Float { x.isFinite ? x : -9999 }

func tokenText(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

extension KeyedEncodingContainer {
    /// OpenAI clients expect an absent value as an explicit `null`, where the synthesized encoder would drop the key.
    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

// MARK: chat

public struct ChatTopLogprob: Encodable, Sendable, Equatable {
    public var token: String
    public var logprob: Float
    public var bytes: [UInt8]

    init(_ t: TokenLogprob) {
        token = tokenText(t.bytes)
        logprob = finite(t.logprob)
        bytes = t.bytes
    }

    enum CodingKeys: String, CodingKey { case token, logprob, bytes }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(token, forKey: .token)
        try c.encode(logprob, forKey: .logprob)
        try c.encode(bytes.map(Int.init), forKey: .bytes)
    }
}

public struct ChatTokenLogprob: Encodable, Sendable, Equatable {
    public var chosen: ChatTopLogprob
    public var topLogprobs: [ChatTopLogprob]

    init?(_ token: GeneratedToken) {
        guard let logprob = token.logprob else { return nil }
        chosen = ChatTopLogprob(logprob)
        topLogprobs = token.topLogprobs.map(ChatTopLogprob.init)
    }

    enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(chosen.token, forKey: .token)
        try c.encode(chosen.logprob, forKey: .logprob)
        try c.encode(chosen.bytes.map(Int.init), forKey: .bytes)
        try c.encode(topLogprobs, forKey: .topLogprobs)
    }
}

public struct ChatLogprobs: Encodable, Sendable, Equatable {
    public var content: [ChatTokenLogprob]
    @ExplicitNull public var refusal: String? = nil
}

/// The assistant's whole message in a chat answer; this server never refuses. `content` is null when the reply
/// only called tools, and `tool_calls` is left out when it called none.
public struct AssistantMessage: Encodable, Sendable {
    public var role = "assistant"
    @ExplicitNull public var content: String?
    @ExplicitNull public var refusal: String? = nil
    public var toolCalls: [ToolCallBody]? = nil

    enum CodingKeys: String, CodingKey { case role, content, refusal, toolCalls = "tool_calls" }
}

/// One call in a message: `{"id": "call_…", "type": "function", "function": {"name", "arguments"}}`.
public struct ToolCallBody: Encodable, Sendable, Equatable {
    public struct Function: Encodable, Sendable, Equatable {
        public var name: String
        /// JSON text, as OpenAI sends it.
        public var arguments: String
    }

    public var id: String
    public var type = "function"
    public var function: Function

    init(id: String, name: String, arguments: String) {
        self.id = id
        self.function = Function(name: name, arguments: arguments)
    }
}

/// One piece of a streamed call: the first carries `id`, `type` and the name (with empty arguments), the rest
/// only argument fragments.
public struct ToolCallDeltaBody: Encodable, Sendable, Equatable {
    public struct Function: Encodable, Sendable, Equatable {
        public var name: String?
        public var arguments: String
    }

    public var index: Int
    public var id: String?
    public var type: String?
    public var function: Function
}

public struct ChatChoice: Encodable, Sendable {
    public var index: Int
    public var message: AssistantMessage
    @ExplicitNull public var logprobs: ChatLogprobs?
    public var finishReason: String

    init(index: Int, content: String?, toolCalls: [ToolCallBody]? = nil, logprobs: ChatLogprobs?, finishReason: String) {
        self.index = index
        self.message = AssistantMessage(content: content, toolCalls: toolCalls)
        self.logprobs = logprobs
        self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }
}

/// Fields every completion object and chunk carries.
public struct ResponseHeader: Sendable {
    public var id: String
    public var created: Int
    public var model: String
    public var systemFingerprint: String
}

enum EnvelopeKeys: String, CodingKey {
    case id, object, created, model, systemFingerprint = "system_fingerprint", choices, usage
}

extension ResponseHeader {
    /// The envelope shared by whole responses and stream chunks; the caller adds `usage` as its kind requires.
    func encode<C: Encodable>(object: String, choices: C, to encoder: any Encoder) throws
        -> KeyedEncodingContainer<EnvelopeKeys>
    {
        var c = encoder.container(keyedBy: EnvelopeKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(systemFingerprint, forKey: .systemFingerprint)
        try c.encode(choices, forKey: .choices)
        return c
    }
}

public struct ChatCompletionResponse: Encodable, Sendable {
    public var header: ResponseHeader
    public var choices: [ChatChoice]
    public var usage: UsageBody

    public func encode(to encoder: any Encoder) throws {
        var c = try header.encode(object: "chat.completion", choices: choices, to: encoder)
        try c.encode(usage, forKey: .usage)
    }
}

public struct ChatChunkChoice: Encodable, Sendable {
    /// What a chunk adds to the message; absent fields are left out, as OpenAI does.
    public struct Delta: Encodable, Sendable {
        public var role: String?
        public var content: String?
        public var toolCalls: [ToolCallDeltaBody]?

        enum CodingKeys: String, CodingKey { case role, content, toolCalls = "tool_calls" }
    }

    public var index: Int
    public var delta: Delta
    @ExplicitNull public var logprobs: ChatLogprobs?
    @ExplicitNull public var finishReason: String?

    init(index: Int, role: String? = nil, content: String? = nil, toolCalls: [ToolCallDeltaBody]? = nil,
         logprobs: ChatLogprobs? = nil, finishReason: String? = nil) {
        self.index = index
        self.delta = Delta(role: role, content: content, toolCalls: toolCalls)
        self.logprobs = logprobs
        self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }
}

public struct ChatCompletionChunk: Encodable, Sendable {
    public var header: ResponseHeader
    public var choices: [ChatChunkChoice]
    /// With include_usage, OpenAI sends `"usage": null` on every chunk and the numbers on the last one.
    public var includeUsage: Bool
    public var usage: UsageBody?

    public func encode(to encoder: any Encoder) throws {
        var c = try header.encode(object: "chat.completion.chunk", choices: choices, to: encoder)
        if includeUsage {
            try c.encodeOrNull(usage, forKey: .usage)
        }
    }
}

// MARK: completions

public struct CompletionLogprobs: Encodable, Sendable, Equatable {
    public var tokens: [String] = []
    public var tokenLogprobs: [Float?] = []
    public var topLogprobs: [[String: Float]?] = []
    public var textOffset: [Int] = []

    public init() {}

    /// Appends one token; `offset` is where its text starts in the choice's text (in characters).
    mutating func append(bytes: [UInt8], logprob: Float?, top: [TokenLogprob]?, offset: Int) {
        tokens.append(tokenText(bytes))
        tokenLogprobs.append(logprob.map(finite))
        if let top {
            var alternatives: [String: Float] = [:]
            for t in top {
                let text = tokenText(t.bytes)
                alternatives[text] = max(alternatives[text] ?? -Float.infinity, finite(t.logprob))
            }
            topLogprobs.append(alternatives)
        } else {
            topLogprobs.append(nil)
        }
        textOffset.append(offset)
    }

    /// Arrays of optionals encode their nils as `null` elements, as OpenAI's do.
    enum CodingKeys: String, CodingKey {
        case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
    }
}

public struct CompletionChoice: Encodable, Sendable {
    public var index: Int
    public var text: String
    @ExplicitNull public var logprobs: CompletionLogprobs? = nil
    @ExplicitNull public var finishReason: String? = nil

    enum CodingKeys: String, CodingKey { case index, text, logprobs, finishReason = "finish_reason" }
}

public struct CompletionResponse: Encodable, Sendable {
    public var header: ResponseHeader
    public var choices: [CompletionChoice]
    /// nil on stream chunks (omitted unless include_usage asks for an explicit null).
    public var usage: UsageBody?
    public var includeUsageNull = false

    public func encode(to encoder: any Encoder) throws {
        var c = try header.encode(object: "text_completion", choices: choices, to: encoder)
        if let usage { try c.encode(usage, forKey: .usage) } else if includeUsageNull { try c.encodeNil(forKey: .usage) }
    }
}

// MARK: models, errors

public struct ModelCard: Encodable, Sendable {
    public var id: String
    public var created: Int
    /// What omitted sampling fields become; nil until the model is loaded.
    public var samplingDefaults: SamplingDefaults?
    enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", samplingDefaults = "sampling_defaults" }
    enum SamplingKeys: String, CodingKey {
        case temperature, topK = "top_k", topP = "top_p", minP = "min_p", repetitionPenalty = "repetition_penalty"
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode("model", forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode("valet", forKey: .ownedBy)
        if let d = samplingDefaults {
            var s = c.nestedContainer(keyedBy: SamplingKeys.self, forKey: .samplingDefaults)
            // Through Double, so 0.95 prints as 0.95 rather than the float's 0.949999988.
            try s.encode(Self.rounded(d.temperature), forKey: .temperature)
            try s.encode(d.topK, forKey: .topK)
            try s.encode(Self.rounded(d.topP), forKey: .topP)
            try s.encode(Self.rounded(d.minP), forKey: .minP)
            try s.encode(Self.rounded(d.repetitionPenalty), forKey: .repetitionPenalty)
        }
    }

    static func rounded(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
}

public struct ModelList: Encodable, Sendable {
    public var data: [ModelCard]
    enum CodingKeys: String, CodingKey { case object, data }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("list", forKey: .object)
        try c.encode(data, forKey: .data)
    }
}

/// `{"error": {"message", "type", "param", "code"}}`, with param and code null when absent.
struct ErrorEnvelope: Encodable {
    struct Body: Encodable {
        var message: String
        var type: String
        @ExplicitNull var param: String?
        @ExplicitNull var code: String?
    }

    var error: Body

    init(error: APIError) {
        self.error = Body(message: error.message, type: error.type, param: error.param, code: error.code)
    }
}

/// JSON and Server-Sent-Events framing for everything above.
public enum OpenAICodec {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }

    public static func json<T: Encodable>(_ value: T) -> [UInt8] {
        // Every type here encodes only strings, integers and finite floats, so encoding cannot fail.
        (try? Array(encoder().encode(value))) ?? Array("{}".utf8)
    }

    public static func errorJSON(_ error: APIError) -> [UInt8] { json(ErrorEnvelope(error: error)) }

    /// One SSE event: `data: <json>` and a blank line.
    public static func event(_ json: [UInt8]) -> [UInt8] {
        Array("data: ".utf8) + json + Array("\n\n".utf8)
    }

    public static func event<T: Encodable>(_ value: T) -> [UInt8] { event(json(value)) }

    public static let done = Array("data: [DONE]\n\n".utf8)

    public static let sseHeaders: [(String, String)] = [
        ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
    ]
}
