// The OpenAI-compatible endpoints: health, models, and turning requests into scheduler jobs (auth is middleware).
import HTTPServer
import Scheduling
import Foundation
import Inference
import Locks
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

        /// A request's `model`; left out (empty) it means the one model served.
        func serves(_ model: String) -> Bool { model.isEmpty || model == servedModelName }
    }

    public let settings: Settings
    let created = Int(Date().timeIntervalSince1970)
    private let phaseValue = Atomic<Int>(Phase.loading.rawValue)
    private let backendBox = Locked<(any CompletionBackend)?>(nil)

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

    /// Wraps the routes that carry the API: the key check when a key is set. /health and /metrics go without.
    public var apiMiddleware: [any HTTPMiddleware] {
        settings.apiKey.map { [BearerAuthMiddleware(key: $0)] } ?? []
    }

    /// Adds every route this service answers; /metrics and /v1/metrics belong to the metrics module.
    public func register(on router: inout Router) {
        registerProbes(on: &router)
        let api = apiMiddleware
        for prefix in ["/v1", ""] {
            router.add("GET", "\(prefix)/models", middleware: api) { [self] _, sink in
                sink.respond(.json(200, OpenAICodec.json(ModelList(data: [modelCard]))))
            }
            router.add("GET", "\(prefix)/models/{id}", middleware: api) { [self] request, sink in
                let id = request.pathParameters["id"] ?? ""
                guard id == settings.servedModelName else { throw APIError.modelNotFound(id) }
                sink.respond(.json(200, OpenAICodec.json(modelCard)))
            }
            let posts: [(String, @Sendable (HTTPRequest, any ResponseSink) throws -> Void)] = [
                ("chat/completions", chatCompletions), ("completions", completions), ("responses", responses),
                ("embeddings", embeddings), ("tokenize", tokenize), ("detokenize", detokenize),
                ("apply-template", applyTemplate),
            ]
            for (path, handler) in posts {
                router.add("POST", "\(prefix)/\(path)", consumes: "application/json", middleware: api) { request, sink in
                    try handler(request, sink)
                }
            }
        }
    }

    /// The routes a probe-only listener carries besides /metrics.
    public func registerProbes(on router: inout Router) {
        router.add("GET", "/health") { [self] _, sink in health(sink) }
        router.add("GET", "/health/live") { [self] _, sink in liveness(sink) }
    }

    var modelCard: ModelCard {
        ModelCard(id: settings.servedModelName, created: created,
                  samplingDefaults: backendBox.withLock { $0 }?.samplingDefaults)
    }

    private var engineStalled: Bool { backendBox.withLock { $0 }?.engineStalled ?? false }

    /// Readiness: serving now. 503 while loading, from the moment shutdown starts, and while the engine is stuck.
    private func health(_ sink: any ResponseSink) {
        switch phase {
        case .ready where engineStalled: sink.respond(.json(503, Array(#"{"status":"engine_stalled"}"#.utf8)))
        case .ready: sink.respond(.json(200, Array(#"{"status":"ok"}"#.utf8)))
        case .loading: sink.respond(.json(503, Array(#"{"status":"loading"}"#.utf8)))
        case .stopping: sink.respond(.json(503, Array(#"{"status":"shutting_down"}"#.utf8)))
        }
    }

    /// Liveness: only a stuck engine loop fails it. Loading and draining are the process doing its job, and a
    /// restart would only cut them short.
    private func liveness(_ sink: any ResponseSink) {
        if engineStalled {
            sink.respond(.json(503, Array(#"{"status":"engine_stalled"}"#.utf8)))
        } else {
            sink.respond(.json(200, Array(#"{"status":"alive"}"#.utf8)))
        }
    }

    func readyBackend() throws -> any CompletionBackend {
        switch phase {
        case .loading: throw APIError.notReady("The model is still loading; retry shortly.")
        case .stopping: throw APIError.from(.shuttingDown)
        case .ready: break
        }
        guard let backend = backendBox.withLock({ $0 }) else { throw APIError.notReady("The model is still loading; retry shortly.") }
        return backend
    }

    func priority(_ request: HTTPRequest, body: Priority?) throws -> Priority {
        if let body { return body }
        guard let header = request.headers["x-valet-priority"] else { return .normal }
        guard let priority = Priority(name: header.trimmingCharacters(in: .whitespaces)) else {
            throw APIError.invalid("Header X-Valet-Priority must be one of low, normal, high, critical; got '\(header)'.", param: "X-Valet-Priority")
        }
        return priority
    }

    /// Default and explicit max_tokens against the context left after the prompt. A default is also capped by the KV
    /// cache's whole capacity, so a request is never refused as too large for a number it did not send.
    static func maxTokens(requested: Int?, default fallback: Int, promptTokens: Int, contextLength: Int,
                          capacityTokens: Int = .max) throws -> Int {
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
        // At least 1: a prompt that alone overfills the cache is refused by the scheduler, naming the prompt.
        return max(1, min(fallback, room, capacityTokens - promptTokens))
    }

    static func newID(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return prefix + String((0..<24).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    /// One choice's job: the request's shared parameters with this choice's id, prompt and logprob wishes.
    private func generationRequest(
        _ common: CommonParameters, id: String, prompt: [Int32], maxTokens: Int, priority: Priority, logprobs: Int?,
        promptLogprobs: Bool = false, kind: JobKind
    ) -> GenerationRequest {
        GenerationRequest(
            id: id, model: settings.servedModelName, promptTokens: prompt, maxTokens: maxTokens, sampling: common.sampling,
            stop: common.stop, priority: priority, queueTimeout: common.queueTimeout, logprobs: logprobs,
            promptLogprobs: promptLogprobs, cacheSalt: common.cacheSalt, kind: kind)
    }

    /// The request's response_format as a constraint on every choice, or a 400 before anything is queued: a schema
    /// that does not compile, or a max_tokens too small for the shortest valid answer.
    /// `tool_choice` "required" or a named function forces a call from the first token; `auto` leaves the model free
    /// until it writes the family's call marker, and from there the call grammar holds (a lazy grammar).
    func constrain(_ jobs: inout [CompletionRun.Job], _ common: CommonParameters, tools: ChatTools = ChatTools(),
                   backend: any CompletionBackend) throws {
        let forcing = tools.active && tools.choice != .auto
        let format = common.responseFormat ?? .text
        if tools.active && tools.choice == .auto && format == .text {
            // Without a vocabulary to mask, an `auto` reply is only read for calls.
            guard let compiler = backend.constraints else { return }
            let syntax = backend.toolCallSyntax
            let masker = try compiler.masker(forcing: tools, syntax: syntax, parallel: tools.parallel)
            for i in jobs.indices {
                jobs[i].request.constraint = LazyGrammarConstraint(masker: masker, trigger: syntax.lazyTrigger,
                                                                   triggerToken: compiler.markerTokens[syntax.trigger])
                jobs[i].request.constraintKind = "tools"
            }
            return
        }
        guard forcing || format != .text else { return }
        if forcing && format != .text {
            throw APIError.invalid("A forced tool call and a response_format cannot both shape one answer.",
                                   param: "response_format")
        }
        let param = forcing ? "tool_choice" : "response_format"
        guard let compiler = backend.constraints else {
            throw APIError.unsupported("'\(param)' needs a loaded model vocabulary.", param: param)
        }
        let masker: GrammarMasker
        if forcing {
            masker = try compiler.masker(forcing: tools, syntax: backend.toolCallSyntax)
        } else if let m = try compiler.masker(for: format) {
            masker = m
        } else {
            return
        }
        let needed = masker.minimumAnswerTokens ?? Int.max
        for i in jobs.indices {
            guard jobs[i].request.maxTokens >= needed else {
                throw APIError.invalid("'max_tokens' is \(jobs[i].request.maxTokens), but the shortest answer the \(param) allows takes \(needed) tokens.", param: "max_tokens")
            }
            jobs[i].request.constraint = masker.start()
            jobs[i].request.constraintKind = forcing ? "tools" : format.kind
        }
    }

    /// Job ids must be unique per job and findable from the id the client got: choice 0 keeps it.
    static func jobID(_ base: String, _ index: Int) -> String { index == 0 ? base : "\(base)-\(index)" }

    /// What both completion routes start with, once the body is decoded.
    struct Preamble<Body> {
        var backend: any CompletionBackend
        var body: Body
        var priority: Priority
        var header: ResponseHeader
    }

    /// A ready backend, the decoded and validated body, the served model, the priority (body over header), and
    /// a fresh response id.
    func preamble<Body>(_ request: HTTPRequest, idPrefix: String,
                        decode: ([UInt8], RequestDecoder.Limits) throws -> Body,
                        common: (Body) -> CommonParameters) throws -> Preamble<Body> {
        let backend = try readyBackend()
        let body = try decode(request.body, .init(vocabularySize: backend.vocabularySize,
                                                  samplingDefaults: backend.samplingDefaults))
        let model = common(body).model
        guard settings.serves(model) else { throw APIError.modelNotFound(model) }
        let header = ResponseHeader(id: OpenAIService.newID(idPrefix), created: Int(Date().timeIntervalSince1970),
                                    model: settings.servedModelName, systemFingerprint: settings.systemFingerprint)
        return Preamble(backend: backend, body: body, priority: try priority(request, body: common(body).priority),
                        header: header)
    }

    /// A failure that is not already an API error (from the backend's tokenizer, say) is the request's fault.
    static func asInvalid<T>(param: String, _ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.invalid("\(error)", param: param)
        }
    }

    func chatCompletions(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let run = try OpenAIService.asInvalid(param: "messages") { () throws -> CompletionRun in
            let p = try preamble(request, idPrefix: "chatcmpl-", decode: RequestDecoder.decodeChat, common: \.common)
            let chat = p.body
            // Under `none` the tools stay out of the prompt, so the model has none to call.
            let prompt = try p.backend.tokenize(chat: chat.messages, tools: chat.tools.active ? chat.tools.tools : [])
            let maxTokens = try OpenAIService.maxTokens(requested: chat.common.maxTokens, default: settings.defaultMaxTokens,
                                                        promptTokens: prompt.count, contextLength: p.backend.contextLength,
                                                        capacityTokens: p.backend.kvCapacityTokens)
            var jobs = (0..<chat.common.n).map { i in
                CompletionRun.Job(
                    request: generationRequest(
                        chat.common, id: OpenAIService.jobID(p.header.id, i), prompt: prompt, maxTokens: maxTokens,
                        priority: p.priority, logprobs: chat.logprobs ? (chat.topLogprobs ?? 0) : nil, kind: .chat),
                    index: i, promptIndex: 0, promptText: "")
            }
            try constrain(&jobs, chat.common, tools: chat.tools, backend: p.backend)
            let options = CompletionRun.Options(kind: .chat, stream: chat.common.stream, includeUsage: chat.common.includeUsage,
                                                wantLogprobs: chat.logprobs, echo: false,
                                                toolSyntax: chat.tools.active ? p.backend.toolCallSyntax : nil)
            return CompletionRun(options, header: p.header, jobs: jobs, sink: sink, backend: p.backend,
                                 notes: request.notes)
        }
        run.start()
    }

    func completions(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let run = try OpenAIService.asInvalid(param: "prompt") { () throws -> CompletionRun in
            let p = try preamble(request, idPrefix: "cmpl-", decode: RequestDecoder.decodeCompletion, common: \.common)
            let completion = p.body
            var jobs: [CompletionRun.Job] = []
            for (promptIndex, input) in completion.prompts.enumerated() {
                let prompt: [Int32]
                let text: String
                switch input {
                case .text(let s):
                    prompt = try p.backend.tokenize(prompt: s)
                    text = s
                case .tokens(let ids):
                    prompt = ids
                    // Echo returns the prompt as text, whichever way it came.
                    text = completion.echo ? p.backend.detokenize(ids) : ""
                }
                guard !prompt.isEmpty else {
                    throw APIError.invalid("'prompt' must not be empty.", param: "prompt")
                }
                let maxTokens = try OpenAIService.maxTokens(requested: completion.common.maxTokens, default: 16,
                                                            promptTokens: prompt.count, contextLength: p.backend.contextLength,
                                                        capacityTokens: p.backend.kvCapacityTokens)
                for i in 0..<completion.common.n {
                    let index = promptIndex * completion.common.n + i
                    jobs.append(CompletionRun.Job(
                        request: generationRequest(
                            completion.common, id: OpenAIService.jobID(p.header.id, index), prompt: prompt,
                            maxTokens: maxTokens, priority: p.priority, logprobs: completion.logprobs,
                            promptLogprobs: completion.echo && completion.logprobs != nil, kind: .completion),
                        index: index, promptIndex: promptIndex, promptText: text))
                }
            }
            try constrain(&jobs, completion.common, backend: p.backend)
            let options = CompletionRun.Options(kind: .text, stream: completion.common.stream,
                                                includeUsage: completion.common.includeUsage,
                                                wantLogprobs: completion.logprobs != nil, echo: completion.echo)
            return CompletionRun(options, header: p.header, jobs: jobs, sink: sink, backend: p.backend,
                                 notes: request.notes)
        }
        run.start()
    }
}
