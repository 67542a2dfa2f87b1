// One /v1/responses request in flight: its single chat job, and the response object or typed event stream
// it becomes (an assistant message, and with tools the function calls read out of the reply).
import HTTPServer
import Inference
import Scheduling
import Locks

final class ResponseRun: Sendable {
    struct State {
        var text = ""
        var handle: JobHandle?
        var streamStarted = false
        var sequence = 0
        var terminal = false
        /// The answer is complete (or abandoned); nothing more is written.
        var ended = false
        /// With tools: the reply read for calls as it grows, and the output items opened so far.
        var calls: ToolCallStream?
        var content = ""
        var messageIndex: Int?
        var callItems: [FunctionCallItem] = []
        var callIndexes: [Int] = []
        var outputCount = 0
    }

    let settings: ResponseSettings
    let messageID: String
    let request: GenerationRequest
    let stream: Bool
    let sink: any ResponseSink
    let backend: any CompletionBackend
    /// Set when the request's tools are offered: the reply is read for calls in this syntax.
    let toolSyntax: ToolCallSyntax?
    let state: Locked<State>
    /// The access log's fields: queue time, token counts, the error if one ends the response.
    let notes: ExchangeNotes
    let submitted = ContinuousClock.now

    init(settings: ResponseSettings, messageID: String, request: GenerationRequest, stream: Bool, sink: any ResponseSink,
         backend: any CompletionBackend, toolSyntax: ToolCallSyntax? = nil, notes: ExchangeNotes = ExchangeNotes()) {
        (self.settings, self.messageID, self.request, self.stream, self.sink, self.backend, self.toolSyntax) =
            (settings, messageID, request, stream, sink, backend, toolSyntax)
        self.notes = notes
        var initial = State()
        initial.calls = toolSyntax.map { ToolCallStream(syntax: $0) }
        state = Locked(initial)
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
                if notes["queue_ms"] == nil { notes.set("queue_ms", CompletionRun.millis(since: submitted)) }
                if stream { startStream(&s) }
            case .token(let token):
                s.text += token.text
                if stream, s.calls != nil, !token.text.isEmpty {
                    startStream(&s)
                    let deltas = s.calls!.append(token.text)
                    send(deltas, &s)
                } else if stream && !token.text.isEmpty {
                    startStream(&s)
                    send(TextEvent(type: "response.output_text.delta", sequenceNumber: next(&s), itemID: messageID,
                                   outputIndex: s.messageIndex ?? 0, text: token.text), &s)
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
        case let e as FunctionArgumentsEvent: e.type
        default: "error"
        }
    }

    private func object(status: String, output: [OutputItem] = [], usage: ResponseUsage? = nil,
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
        // With tools the message opens only when content comes: a reply that only calls has none.
        if s.calls == nil { openMessage(&s) }
    }

    private func openMessage(_ s: inout State) {
        guard s.messageIndex == nil else { return }
        let index = s.outputCount
        s.messageIndex = index
        s.outputCount += 1
        send(OutputItemEvent(type: "response.output_item.added", sequenceNumber: next(&s), outputIndex: index,
                             item: .message(OutputMessage(id: messageID, status: "in_progress", text: nil))), &s)
        send(ContentPartEvent(type: "response.content_part.added", sequenceNumber: next(&s), itemID: messageID,
                              outputIndex: index, part: OutputText(text: "")), &s)
    }

    /// Content and call deltas of a reply with tools, as the Responses events.
    private func send(_ deltas: [ToolCallStream.Delta], _ s: inout State) {
        for delta in deltas {
            switch delta {
            case .content(let text):
                openMessage(&s)
                s.content += text
                send(TextEvent(type: "response.output_text.delta", sequenceNumber: next(&s), itemID: messageID,
                               outputIndex: s.messageIndex!, text: text), &s)
            case .callStart(_, let id, let name):
                let item = FunctionCallItem(id: OpenAIService.newID("fc_"), callID: id, name: name, arguments: "",
                                            status: "in_progress")
                s.callItems.append(item)
                s.callIndexes.append(s.outputCount)
                s.outputCount += 1
                send(OutputItemEvent(type: "response.output_item.added", sequenceNumber: next(&s),
                                     outputIndex: s.callIndexes.last!, item: .functionCall(item)), &s)
            case .arguments(let index, let fragment):
                s.callItems[index].arguments += fragment
                send(FunctionArgumentsEvent(type: "response.function_call_arguments.delta", sequenceNumber: next(&s),
                                            itemID: s.callItems[index].id, outputIndex: s.callIndexes[index],
                                            text: fragment), &s)
            }
        }
    }

    /// The whole reply's output items: its message (unless it only called) and its calls.
    private func wholeOutput(_ text: String, status: String) -> [OutputItem] {
        guard let syntax = toolSyntax else { return [.message(OutputMessage(id: messageID, status: status, text: text))] }
        let reply = ParsedReply(text, syntax: syntax)
        var items: [OutputItem] = []
        if reply.content != nil || reply.calls.isEmpty {
            items.append(.message(OutputMessage(id: messageID, status: status, text: reply.content ?? "")))
        }
        for call in reply.calls {
            items.append(.functionCall(FunctionCallItem(id: OpenAIService.newID("fc_"), callID: OpenAIService.newID("call_"),
                                                        name: call.name, arguments: call.arguments, status: status)))
        }
        return items
    }

    private func finish(_ reason: FinishReason, _ usage: Usage, _ s: inout State) {
        notes.set("prompt_tokens", String(usage.promptTokens))
        notes.set("completion_tokens", String(usage.completionTokens))
        let usage = ResponseUsage(inputTokens: usage.promptTokens, outputTokens: usage.completionTokens,
                                  cachedTokens: usage.cachedTokens)
        guard stream else {
            // Complete calls make a complete response even when the budget ran out after them.
            let called = toolSyntax.map { !ParsedReply(s.text, syntax: $0).calls.isEmpty } ?? false
            let complete = reason == .stop || called
            let output = wholeOutput(s.text, status: complete ? "completed" : "incomplete")
            let final = object(status: complete ? "completed" : "incomplete", output: output, usage: usage,
                               incompleteReason: complete ? nil : "max_output_tokens")
            sink.respond(.json(200, OpenAICodec.json(final), headers: [("X-Request-Id", settings.id)]))
            return
        }
        startStream(&s)
        if s.calls != nil {
            let deltas = s.calls!.finish()
            send(deltas, &s)
        }
        let complete = reason == .stop || !s.callItems.isEmpty
        let status = complete ? "completed" : "incomplete"
        if s.calls != nil && s.messageIndex == nil && s.callItems.isEmpty { openMessage(&s) }
        let text = s.calls == nil ? s.text : s.content
        var output: [(index: Int, item: OutputItem)] = []
        if let index = s.messageIndex {
            let message = OutputMessage(id: messageID, status: status, text: text)
            send(TextEvent(type: "response.output_text.done", sequenceNumber: next(&s), itemID: messageID,
                           outputIndex: index, text: text), &s)
            send(ContentPartEvent(type: "response.content_part.done", sequenceNumber: next(&s), itemID: messageID,
                                  outputIndex: index, part: OutputText(text: text)), &s)
            send(OutputItemEvent(type: "response.output_item.done", sequenceNumber: next(&s), outputIndex: index,
                                 item: .message(message)), &s)
            output.append((index, .message(message)))
        }
        for (i, var call) in s.callItems.enumerated() {
            call.status = status
            let index = s.callIndexes[i]
            send(FunctionArgumentsEvent(type: "response.function_call_arguments.done", sequenceNumber: next(&s),
                                        itemID: call.id, outputIndex: index, text: call.arguments, name: call.name), &s)
            send(OutputItemEvent(type: "response.output_item.done", sequenceNumber: next(&s), outputIndex: index,
                                 item: .functionCall(call)), &s)
            output.append((index, .functionCall(call)))
        }
        let final = object(status: status, output: output.sorted { $0.index < $1.index }.map(\.item), usage: usage,
                           incompleteReason: complete ? nil : "max_output_tokens")
        // As OpenAI does: a response cut off by max_output_tokens ends with response.incomplete.
        send(LifecycleEvent(type: complete ? "response.completed" : "response.incomplete", sequenceNumber: next(&s),
                            response: final), &s)
        sink.finish()
    }

    private func fail(_ failure: JobFailure, _ s: inout State) {
        let error = APIError.from(failure)
        notes.set("error", error.code ?? error.type)
        if failure == .cancelled && sink.isClientGone { return }
        if s.streamStarted {
            send(ErrorEvent(sequenceNumber: next(&s), error: error), named: "error", &s)
            sink.finish()
        } else {
            sink.respond(error.response)
        }
    }
}
