// POST /v1/embeddings: each input becomes a prefill-only job through the same lot and engine loop as any other,
// answered with its pooled final hidden states.
import HTTPServer
import Scheduling
import Foundation

extension OpenAIService {
    func embeddings(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let backend = try readyBackend()
        let body = try EmbeddingRequest.decode(
            request.body, limits: .init(vocabularySize: backend.vocabularySize), dimensions: backend.embeddingDimensions)
        guard settings.serves(body.model) else { throw APIError.modelNotFound(body.model) }
        let priority = try priority(request, body: body.priority)
        let id = OpenAIService.newID("embd-")
        let requests = try body.inputs.enumerated().map { i, input -> GenerationRequest in
            let param = body.inputs.count == 1 ? "input" : "input[\(i)]"
            let tokens: [Int32]
            switch input {
            case .text(let text): tokens = try OpenAIService.asInvalid(param: param) { try backend.tokenize(prompt: text) }
            case .tokens(let ids): tokens = ids
            }
            guard !tokens.isEmpty else { throw APIError.invalid("'\(param)' must not be empty.", param: param) }
            guard tokens.count <= backend.contextLength else {
                throw APIError(status: 400, message: "'\(param)' has \(tokens.count) tokens; this model's maximum context "
                               + "length is \(backend.contextLength) tokens. Please shorten the input.",
                               type: "invalid_request_error", param: param, code: "context_length_exceeded")
            }
            return GenerationRequest(id: OpenAIService.jobID(id, i), model: settings.servedModelName, promptTokens: tokens,
                                     maxTokens: 0, priority: priority, queueTimeout: body.queueTimeout,
                                     embedding: backend.pooling)
        }
        if let first = requests.first { request.notes.set("id", first.id) }
        EmbeddingRun(requests: requests, encoding: body.encoding, model: settings.servedModelName, sink: sink,
                     backend: backend, notes: request.notes).start()
    }
}
