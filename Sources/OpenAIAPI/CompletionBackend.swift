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
    /// The chat template applied to the messages, ending with the assistant's generation prompt, as tokens.
    func tokenize(chat messages: [ChatMessageInput]) throws -> [Int32]
    /// The same rendering as text: exactly what `tokenize(chat:)` tokenizes.
    func render(chat messages: [ChatMessageInput]) throws -> String
    /// Tokens back to text (special tokens as their text; invalid UTF-8 replaced).
    func detokenize(_ tokens: [Int32]) -> String
    /// The raw bytes of one token, for prompt logprobs.
    func tokenBytes(_ token: Int32) -> [UInt8]
    /// Accepted (a handle that cancels it) or refused at once. An accepted job's events arrive on the engine
    /// thread (or the cancelling thread); never block in them.
    func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission
}

extension CompletionBackend {
    /// Compiles `response_format` constraints over the model's vocabulary; nil: structured outputs unavailable.
    public var constraints: ConstraintCompiler? { nil }
}
