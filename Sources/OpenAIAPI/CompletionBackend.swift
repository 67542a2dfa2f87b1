// The seam between the API and the model side: tokenizing, the chat template, and submitting jobs.
import Scheduling
import Inference

/// What the OpenAI handlers need from a loaded model and its scheduler. `EngineBackend` is the real one.
public protocol CompletionBackend: Sendable {
    /// The longest sequence (prompt + completion) one request may use.
    var contextLength: Int { get }
    var vocabularySize: Int { get }
    /// Width of one embedding: the model's hidden size.
    var embeddingDimensions: Int { get }
    /// How an embedding pools the prompt's hidden states (`--pooling`).
    var pooling: Pooling { get }
    /// What a request's omitted sampling fields become.
    var samplingDefaults: SamplingDefaults { get }
    /// Compiles `response_format` constraints over the model's vocabulary (nil: structured outputs unavailable).
    var constraints: ConstraintCompiler? { get }
    /// A completions prompt as tokens (BOS added if the model wants it).
    func tokenize(prompt: String) throws -> [Int32]
    /// Text as tokens: `addSpecial` adds BOS when the model wants one, `parseSpecial` reads special tokens' text
    /// (`<|im_start|>`) as those tokens.
    func tokenize(text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32]
    /// The chat template applied to the messages (and the tools, in the template's tool format), ending with the
    /// assistant's generation prompt, as tokens.
    func tokenize(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> [Int32]
    /// The same rendering as text: exactly what `tokenize(chat:tools:)` tokenizes.
    func render(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> String
    /// How the model writes tool calls, for reading them out of its replies and forcing them.
    var toolCallSyntax: ToolCallSyntax { get }
    /// Tokens back to text (special tokens as their text; invalid UTF-8 replaced).
    func detokenize(_ tokens: [Int32]) -> String
    /// The raw bytes of one token, for prompt logprobs.
    func tokenBytes(_ token: Int32) -> [UInt8]
    /// Accepted (a handle that cancels it) or refused at once. An accepted job's events arrive on the engine
    /// thread (or the cancelling thread); never block in them.
    func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission
    /// The whole KV cache in tokens: no one request (prompt + completion) can be larger.
    var kvCapacityTokens: Int { get }
    /// The engine loop has work waiting and has not made progress for a while: liveness should fail.
    var engineStalled: Bool { get }
}

extension CompletionBackend {
    public var kvCapacityTokens: Int { Int.max }
    public var engineStalled: Bool { false }
}

extension CompletionBackend {
    func tokenize(chat messages: [ChatMessageInput]) throws -> [Int32] { try tokenize(chat: messages, tools: []) }
    func render(chat messages: [ChatMessageInput]) throws -> String { try render(chat: messages, tools: []) }
}

extension CompletionBackend {
    /// Compiles `response_format` constraints over the model's vocabulary; nil: structured outputs unavailable.
    public var constraints: ConstraintCompiler? { nil }
}
