// One /v1/responses request in flight: its single chat job, and the response object or typed event stream
// it becomes.
import HTTPServer
import Scheduling
import Synchronization

final class ResponseRun: Sendable {
    struct State {
        var text = ""
        var handle: JobHandle?
        var streamStarted = false
        var sequence = 0
        var terminal = false
        /// The answer is complete (or abandoned); nothing more is written.
        var ended = false
    }

    let settings: ResponseSettings
    let messageID: String
    let request: GenerationRequest
    let stream: Bool
    let sink: any ResponseSink
    let backend: any CompletionBackend
    let state = Mutex(State())

    init(settings: ResponseSettings, messageID: String, request: GenerationRequest, stream: Bool, sink: any ResponseSink,
         backend: any CompletionBackend) {
        (self.settings, self.messageID, self.request, self.stream, self.sink, self.backend) =
            (settings, messageID, request, stream, sink, backend)
    }

    func start() {
        sink.onClose { [self] completed in
            guard !completed else { return }
            let handle = state.withLock { s -> JobHandle? in
                s.ended = true
                return s.terminal ? nil : s.handle
            }
            handle?.cancel()
        }
        switch backend.submit(request, onEvent: { [self] event in handle(event) }) {
        case .accepted(let handle):
            let cancelNow = state.withLock { s -> Bool in
                s.handle = handle
                return s.ended && !s.terminal
            }
            if cancelNow { handle.cancel() }
        case .rejected(let failure):
            handle(.failed(failure))
        }
    }

    private func handle(_ event: JobEvent) {
        state.withLock { s in
            if case .finished = event { s.terminal = true }
            if case .failed = event { s.terminal = true }
            guard !s.ended else { return }
            switch event {
            case .admitted:
                if stream { startStream(&s) }
            case .token(let token):
                s.text += token.text
                if stream && !token.text.isEmpty {
                    startStream(&s)
                    send(TextEvent(type: "response.output_text.delta", sequenceNumber: next(&s), itemID: messageID,
                                   text: token.text), &s)
                }
            case .finished(let reason, let usage):
                s.ended = true
                finish(reason, usage, &s)
            case .failed(let failure):
                s.ended = true
                fail(failure, &s)
            case .promptLogprobs, .embedding:
                break
            }
        }
    }

    // MARK: pieces, all called with the lock held

    private func next(_ s: inout State) -> Int {
        defer { s.sequence += 1 }
        return s.sequence
    }

    private func send<E: Encodable>(_ event: E, named type: String? = nil, _ s: inout State) {
        let name = type ?? Self.typeName(event)
        sink.write(Array("event: \(name)\n".utf8) + OpenAICodec.event(event))
    }

    private static func typeName<E: Encodable>(_ event: E) -> String {
        switch event {
        case let e as LifecycleEvent: e.type
        case let e as OutputItemEvent: e.type
        case let e as ContentPartEvent: e.type
        case let e as TextEvent: e.type
        default: "error"
        }
    }

    private func object(status: String, output: [OutputMessage] = [], usage: ResponseUsage? = nil,
                        incompleteReason: String? = nil) -> ResponseObject {
        ResponseObject(settings: settings, status: status, output: output, usage: usage, incompleteReason: incompleteReason)
    }

    /// created, in_progress, then the message item and its text part opened, in the order the client folds them.
    private func startStream(_ s: inout State) {
        guard !s.streamStarted else { return }
        s.streamStarted = true
        var headers = OpenAICodec.sseHeaders
        headers.append(("X-Request-Id", settings.id))
        sink.respond(HTTPResponse(status: 200, headers: headers, body: .stream))
        for type in ["response.created", "response.in_progress"] {
            send(LifecycleEvent(type: type, sequenceNumber: next(&s), response: object(status: "in_progress")), &s)
        }
        send(OutputItemEvent(type: "response.output_item.added", sequenceNumber: next(&s),
                             item: OutputMessage(id: messageID, status: "in_progress", text: nil)), &s)
        send(ContentPartEvent(type: "response.content_part.added", sequenceNumber: next(&s), itemID: messageID,
                              part: OutputText(text: "")), &s)
    }

    private func finish(_ reason: FinishReason, _ usage: Usage, _ s: inout State) {
        let complete = reason == .stop
        let status = complete ? "completed" : "incomplete"
        let message = OutputMessage(id: messageID, status: status, text: s.text)
        let final = object(status: status, output: [message],
                           usage: ResponseUsage(inputTokens: usage.promptTokens, outputTokens: usage.completionTokens,
                                               cachedTokens: usage.cachedTokens),
                           incompleteReason: complete ? nil : "max_output_tokens")
        guard stream else {
            sink.respond(.json(200, OpenAICodec.json(final), headers: [("X-Request-Id", settings.id)]))
            return
        }
        startStream(&s)
        send(TextEvent(type: "response.output_text.done", sequenceNumber: next(&s), itemID: messageID, text: s.text), &s)
        send(ContentPartEvent(type: "response.content_part.done", sequenceNumber: next(&s), itemID: messageID,
                              part: OutputText(text: s.text)), &s)
        send(OutputItemEvent(type: "response.output_item.done", sequenceNumber: next(&s), item: message), &s)
        // As OpenAI does: a response cut off by max_output_tokens ends with response.incomplete.
        send(LifecycleEvent(type: complete ? "response.completed" : "response.incomplete", sequenceNumber: next(&s),
                            response: final), &s)
        sink.finish()
    }

    private func fail(_ failure: JobFailure, _ s: inout State) {
        if failure == .cancelled && sink.isClientGone { return }
        let error = APIError.from(failure)
        if s.streamStarted {
            send(ErrorEvent(sequenceNumber: next(&s), error: error), named: "error", &s)
            sink.finish()
        } else {
            sink.respond(error.response)
        }
    }
}
