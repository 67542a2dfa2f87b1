// The OpenAI-compatible endpoints: auth, health, models, and turning requests into scheduler jobs.
import HTTPServer
import Scheduling
import Foundation
import Inference
import Synchronization

public final class OpenAIService: Sendable {
    public enum Phase: Int, Sendable {
        case loading = 0, ready, stopping
    }

    public struct Settings: Sendable {
        public var servedModelName: String
        public var apiKey: String?
        /// Chat's max_tokens when the request has none (completions use OpenAI's 16).
        public var defaultMaxTokens: Int = 512
        public var systemFingerprint: String
        public init(servedModelName: String, apiKey: String? = nil, defaultMaxTokens: Int = 512,
                    systemFingerprint: String = "valet") {
            self.systemFingerprint = systemFingerprint
            self.servedModelName = servedModelName
            self.apiKey = apiKey
            self.defaultMaxTokens = defaultMaxTokens
        }
    }

    public let settings: Settings
    let created = Int(Date().timeIntervalSince1970)
    private let phaseValue = Atomic<Int>(Phase.loading.rawValue)
    private let backendBox = Mutex<(any CompletionBackend)?>(nil)

    public init(settings: Settings) {
        self.settings = settings
    }

    public var phase: Phase { Phase(rawValue: phaseValue.load(ordering: .acquiring)) ?? .loading }

    /// The model is loaded: start serving completions and report healthy.
    public func ready(backend: any CompletionBackend) {
        backendBox.withLock { $0 = backend }
        phaseValue.store(Phase.ready.rawValue, ordering: .releasing)
    }

    /// Shutting down: health turns 503 and new completions are refused.
    public func stopping() {
        phaseValue.store(Phase.stopping.rawValue, ordering: .releasing)
    }

    /// Adds every route this service answers; /metrics and /v1/metrics belong to the metrics module.
    public func register(on router: inout Router) {
        router.add("GET", "/health") { [self] _, responder in health(responder) }
        for prefix in ["/v1", ""] {
            router.add("GET", "\(prefix)/models") { [self] request, responder in
                guard authorize(request, responder) else { return }
                responder.respond(.json(200, OpenAICodec.json(ModelList(data: [modelCard]))))
            }
            router.add("GET", "\(prefix)/models/{id}") { [self] request, responder in
                guard authorize(request, responder) else { return }
                let id = request.pathParameters["id"] ?? ""
                guard id == settings.servedModelName else {
                    responder.respond(OpenAICodec.errorResponse(.modelNotFound(id)))
                    return
                }
                responder.respond(.json(200, OpenAICodec.json(modelCard)))
            }
            router.add("POST", "\(prefix)/chat/completions", consumes: "application/json") { [self] request, responder in
                guard authorize(request, responder) else { return }
                chatCompletions(request, responder)
            }
            router.add("POST", "\(prefix)/completions", consumes: "application/json") { [self] request, responder in
                guard authorize(request, responder) else { return }
                completions(request, responder)
            }
        }
    }

    var modelCard: ModelCard { ModelCard(id: settings.servedModelName, created: created) }

    private func health(_ responder: Responder) {
        switch phase {
        case .ready: responder.respond(.json(200, Array(#"{"status":"ok"}"#.utf8)))
        case .loading: responder.respond(.json(503, Array(#"{"status":"loading"}"#.utf8)))
        case .stopping: responder.respond(.json(503, Array(#"{"status":"shutting_down"}"#.utf8)))
        }
    }

    /// Routes that carry the API need the key when one is set; /health and /metrics stay open.
    public func authorize(_ request: HTTPRequest, _ responder: Responder) -> Bool {
        guard let key = settings.apiKey else { return true }
        let header = request.headers["authorization"] ?? ""
        let prefix = "bearer "
        let presented = header.lowercased().hasPrefix(prefix) ? String(header.dropFirst(prefix.count)) : ""
        if OpenAIService.constantTimeEquals(Array(presented.utf8), Array(key.utf8)) { return true }
        responder.respond(OpenAICodec.errorResponse(.unauthorized))
        return false
    }

    /// Time depends only on the presented key's length, never on where the first mismatch is.
    static func constantTimeEquals(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = presented.count == expected.count ? 0 : 1
        for i in 0..<presented.count {
            let e = expected.isEmpty ? 0 : expected[i % expected.count]
            difference |= presented[i] ^ e
        }
        return difference == 0 && !expected.isEmpty
    }

    private func readyBackend() throws -> any CompletionBackend {
        switch phase {
        case .loading: throw APIError.notReady("The model is still loading; retry shortly.")
        case .stopping: throw APIError(status: 503, message: "The server is shutting down.", type: "service_unavailable", code: "shutting_down")
        case .ready: break
        }
        guard let backend = backendBox.withLock({ $0 }) else { throw APIError.notReady("The model is still loading; retry shortly.") }
        return backend
    }

    private func priority(_ request: HTTPRequest, body: Priority?) throws -> Priority {
        if let body { return body }
        guard let header = request.headers["x-valet-priority"] else { return .normal }
        guard let priority = Priority(name: header.trimmingCharacters(in: .whitespaces)) else {
            throw APIError.invalid("Header X-Valet-Priority must be one of low, normal, high, critical; got '\(header)'.", param: "X-Valet-Priority")
        }
        return priority
    }

    /// Default and explicit max_tokens against the context left after the prompt.
    static func maxTokens(requested: Int?, default fallback: Int, promptTokens: Int, contextLength: Int) throws -> Int {
        let room = contextLength - promptTokens
        if let requested {
            if promptTokens + requested > contextLength {
                throw APIError.contextLengthExceeded(promptTokens: promptTokens, maxTokens: requested, contextLength: contextLength)
            }
            return requested
        }
        guard room > 0 else {
            throw APIError.contextLengthExceeded(promptTokens: promptTokens, maxTokens: nil, contextLength: contextLength)
        }
        return min(fallback, room)
    }

    static func newID(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return prefix + String((0..<24).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    private func header(prefix: String) -> ResponseHeader {
        ResponseHeader(id: OpenAIService.newID(prefix), created: Int(Date().timeIntervalSince1970),
                       model: settings.servedModelName, systemFingerprint: settings.systemFingerprint)
    }

    /// One choice's job: the request's shared parameters with this choice's id, prompt and logprob wishes.
    private func generationRequest(
        _ common: CommonParameters, id: String, prompt: [Int32], maxTokens: Int, priority: Priority, logprobs: Int?,
        promptLogprobs: Bool = false
    ) -> GenerationRequest {
        GenerationRequest(
            id: id, model: settings.servedModelName, promptTokens: prompt, maxTokens: maxTokens, sampling: common.sampling,
            stop: common.stop, priority: priority, queueTimeout: common.queueTimeout, logprobs: logprobs,
            promptLogprobs: promptLogprobs)
    }

    /// Job ids must be unique per job and findable from the id the client got: choice 0 keeps it.
    static func jobID(_ base: String, _ index: Int) -> String { index == 0 ? base : "\(base)-\(index)" }

    func chatCompletions(_ request: HTTPRequest, _ responder: Responder) {
        do {
            let backend = try readyBackend()
            let chat = try RequestDecoder.decodeChat(request.body, limits: .init(vocabularySize: backend.vocabularySize))
            guard chat.common.model == settings.servedModelName else { throw APIError.modelNotFound(chat.common.model) }
            let priority = try priority(request, body: chat.common.priority)
            let prompt = try backend.tokenize(chat: chat.messages)
            let maxTokens = try OpenAIService.maxTokens(requested: chat.common.maxTokens, default: settings.defaultMaxTokens,
                                                        promptTokens: prompt.count, contextLength: backend.contextLength)
            let header = header(prefix: "chatcmpl-")
            let jobs = (0..<chat.common.n).map { i in
                CompletionRun.Job(
                    request: generationRequest(
                        chat.common, id: OpenAIService.jobID(header.id, i), prompt: prompt, maxTokens: maxTokens,
                        priority: priority, logprobs: chat.logprobs ? (chat.topLogprobs ?? 0) : nil),
                    index: i, promptIndex: 0, promptText: "")
            }
            CompletionRun(kind: .chat, header: header, jobs: jobs, stream: chat.common.stream,
                          includeUsage: chat.common.includeUsage, wantLogprobs: chat.logprobs, echo: false,
                          responder: responder, backend: backend).start()
        } catch let error as APIError {
            responder.respond(OpenAICodec.errorResponse(error))
        } catch {
            responder.respond(OpenAICodec.errorResponse(.invalid("\(error)", param: "messages")))
        }
    }

    func completions(_ request: HTTPRequest, _ responder: Responder) {
        do {
            let backend = try readyBackend()
            let completion = try RequestDecoder.decodeCompletion(request.body, limits: .init(vocabularySize: backend.vocabularySize))
            guard completion.common.model == settings.servedModelName else { throw APIError.modelNotFound(completion.common.model) }
            let priority = try priority(request, body: completion.common.priority)
            let header = header(prefix: "cmpl-")
            var jobs: [CompletionRun.Job] = []
            for (promptIndex, text) in completion.prompts.enumerated() {
                let prompt = try backend.tokenize(prompt: text)
                guard !prompt.isEmpty else {
                    throw APIError.invalid("'prompt' must not be empty.", param: "prompt")
                }
                let maxTokens = try OpenAIService.maxTokens(requested: completion.common.maxTokens, default: 16,
                                                            promptTokens: prompt.count, contextLength: backend.contextLength)
                for i in 0..<completion.common.n {
                    let index = promptIndex * completion.common.n + i
                    jobs.append(CompletionRun.Job(
                        request: generationRequest(
                            completion.common, id: OpenAIService.jobID(header.id, index), prompt: prompt,
                            maxTokens: maxTokens, priority: priority, logprobs: completion.logprobs,
                            promptLogprobs: completion.echo && completion.logprobs != nil),
                        index: index, promptIndex: promptIndex, promptText: text))
                }
            }
            CompletionRun(kind: .text, header: header, jobs: jobs, stream: completion.common.stream,
                          includeUsage: completion.common.includeUsage, wantLogprobs: completion.logprobs != nil,
                          echo: completion.echo, responder: responder, backend: backend).start()
        } catch let error as APIError {
            responder.respond(OpenAICodec.errorResponse(error))
        } catch {
            responder.respond(OpenAICodec.errorResponse(.invalid("\(error)", param: "prompt")))
        }
    }
}
