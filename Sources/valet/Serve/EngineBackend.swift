// The real CompletionBackend: the model's tokenizer and chat template in front of the scheduler.
import OpenAIAPI
import Scheduling
import Inference

final class EngineBackend: CompletionBackend {
    let scheduler: Scheduler
    let model: LoadedModel
    let contextLength: Int
    let samplingDefaults: SamplingDefaults

    init(scheduler: Scheduler, model: LoadedModel, samplingDefaults: SamplingDefaults) {
        self.scheduler = scheduler
        self.model = model
        self.samplingDefaults = samplingDefaults
        contextLength = scheduler.config.ctxSize ?? model.engine.contextLength
    }

    var vocabularySize: Int { model.tokenizer.vocabSize }

    func tokenize(prompt: String) throws -> [Int32] {
        // Raw prompts may spell out the model's special tokens themselves (hand-written templates).
        model.tokenizer.encode(prompt, addBOS: model.tokenizer.addBOSByDefault, parseSpecial: true)
    }

    func tokenize(chat messages: [ChatMessageInput]) throws -> [Int32] {
        do {
            return try model.template.promptTokens(messages.map { ChatMessage(role: $0.role, content: $0.content) },
                                                   tokenizer: model.tokenizer)
        } catch {
            throw APIError.invalid("The messages cannot be rendered with this model's chat template: \(error)", param: "messages")
        }
    }

    func tokenBytes(_ token: Int32) -> [UInt8] { model.tokenizer.bytes(of: token) }

    func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission {
        scheduler.submit(request, onEvent: onEvent)
    }
}
