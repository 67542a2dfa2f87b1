// The real CompletionBackend: the model's tokenizer and chat template in front of the scheduler.
import OpenAIAPI
import Scheduling
import Inference

final class EngineBackend: CompletionBackend {
    let scheduler: Scheduler
    let model: LoadedModel
    let contextLength: Int
    let samplingDefaults: SamplingDefaults
    let pooling: Pooling
    let constraints: ConstraintCompiler?

    init(scheduler: Scheduler, model: LoadedModel, samplingDefaults: SamplingDefaults, pooling: Pooling,
         onGrammarCompiled: @escaping @Sendable (Double) -> Void = { _ in }) {
        self.scheduler = scheduler
        self.model = model
        self.samplingDefaults = samplingDefaults
        self.pooling = pooling
        contextLength = scheduler.config.ctxSize ?? model.engine.contextLength
        constraints = ConstraintCompiler(vocabulary: TokenVocabulary(tokenizer: model.tokenizer),
                                         markerTokens: Self.markerTokens(model), onCompile: onGrammarCompiled)
    }

    /// The call marker when the tokenizer holds it as one special token (Qwen's `<tool_call>`, Mistral's `[TOOL_CALLS]`).
    static func markerTokens(_ model: LoadedModel) -> [String: Int32] {
        let marker = model.template.toolCallSyntax.trigger
        guard !marker.isEmpty else { return [:] }
        let tokens = model.tokenizer.encode(marker, addBOS: false, parseSpecial: true)
        guard tokens.count == 1, model.tokenizer.isSpecial(tokens[0]) else { return [:] }
        return [marker: tokens[0]]
    }

    var vocabularySize: Int { model.tokenizer.vocabSize }
    var embeddingDimensions: Int { model.engine.config.dim }

    func tokenize(prompt: String) throws -> [Int32] {
        // Raw prompts may spell out the model's special tokens themselves (hand-written templates).
        model.tokenizer.encode(prompt, addBOS: model.tokenizer.addBOSByDefault, parseSpecial: true)
    }

    func tokenize(text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        model.tokenizer.encode(text, addBOS: addSpecial && model.tokenizer.addBOSByDefault, parseSpecial: parseSpecial)
    }

    private func messages(_ input: [ChatMessageInput]) -> [ChatMessage] {
        input.map { ChatMessage(role: $0.role, content: $0.content, toolCalls: $0.toolCalls, toolCallID: $0.toolCallID) }
    }

    var toolCallSyntax: ToolCallSyntax { model.template.toolCallSyntax }

    func tokenize(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> [Int32] {
        do {
            return try model.template.promptTokens(self.messages(messages), tools: tools.map(\.definition),
                                                   tokenizer: model.tokenizer)
        } catch {
            throw APIError.invalid("The messages cannot be rendered with this model's chat template: \(error)", param: "messages")
        }
    }

    func render(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> String {
        let text: String
        do {
            text = try model.template.render(self.messages(messages), tools: tools.map(\.definition), addGenerationPrompt: true)
        } catch {
            throw APIError.invalid("The messages cannot be rendered with this model's chat template: \(error)", param: "messages")
        }
        // The BOS that promptTokens adds is part of what the model is fed, so it is part of the text too.
        let tokenizer = model.tokenizer
        if tokenizer.addBOSByDefault && !model.template.rendersBOS,
           let bos = tokenizer.bosToken, let bosText = tokenizer.tokenText(bos) {
            return bosText + text
        }
        return text
    }

    func detokenize(_ tokens: [Int32]) -> String { model.tokenizer.decode(tokens) }

    func tokenBytes(_ token: Int32) -> [UInt8] { model.tokenizer.bytes(of: token) }

    func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission {
        scheduler.submit(request, onEvent: onEvent)
    }

    var kvCapacityTokens: Int { (scheduler.config.totalBlocks ?? 0) * scheduler.config.blockSize }

    /// One step takes milliseconds even for a full prefill chunk on a loaded host; a minute without a pass while
    /// work waits means the loop is stuck, and a restart is the cure.
    static let stallSeconds = 60.0

    var engineStalled: Bool { (scheduler.stalledSeconds() ?? 0) > EngineBackend.stallSeconds }
}
