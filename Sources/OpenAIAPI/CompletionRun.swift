// One HTTP completion request in flight: its n jobs, their events, and the JSON or SSE answer they become.
import HTTPServer
import Scheduling
import Foundation
import Inference
import Locks

final class CompletionRun: Sendable {
    enum Kind: Sendable { case chat, text }

    struct Job: Sendable {
        var request: GenerationRequest
        /// Choice index in the response.
        var index: Int
        var promptIndex: Int
        /// For echo: the prompt text that starts the choice.
        var promptText: String
    }

    struct Choice {
        var text = ""
        var chatLogprobs: [ChatTokenLogprob] = []
        var textLogprobs: CompletionLogprobs?
        /// Characters of text so far, for completions' text_offset (Python counts code points).
        var offset = 0
        var echoed = false
        var finish: FinishReason?
        var usage: Usage?
        var terminal = false
        /// A streamed chat with tools: reads calls out of the reply as it grows.
        var toolStream: ToolCallStream?
    }

    struct State {
        var choices: [Choice]
        /// Handles of the accepted jobs, by position, to cancel the unfinished ones.
        var handles: [Int: JobHandle] = [:]
        var streamStarted = false
        /// The HTTP answer is complete (or abandoned); nothing more is written.
        var ended = false
    }

    /// What the request asked for, beyond its jobs.
    struct Options: Sendable {
        var kind: Kind
        var stream: Bool
        var includeUsage: Bool
        var wantLogprobs: Bool
        var echo: Bool
        /// Set when the reply is read for tool calls, in the model's syntax.
        var toolSyntax: ToolCallSyntax? = nil
    }

    let options: Options
    let header: ResponseHeader
    let jobs: [Job]
    let sink: any ResponseSink
    let backend: any CompletionBackend
    let state: Locked<State>
    /// For the access log: the response id, token counts and the first job's wait in the lot.
    let notes: ExchangeNotes
    private let submitted = ContinuousClock.now

    init(_ options: Options, header: ResponseHeader, jobs: [Job], sink: any ResponseSink, backend: any CompletionBackend,
         notes: ExchangeNotes = ExchangeNotes()) {
        (self.options, self.header, self.jobs, self.sink, self.backend) = (options, header, jobs, sink, backend)
        self.notes = notes
        notes.set("id", header.id)
        var choices = [Choice](repeating: Choice(), count: jobs.count)
        if options.kind == .text && options.wantLogprobs {
            for i in choices.indices { choices[i].textLogprobs = CompletionLogprobs() }
        }
        if let syntax = options.toolSyntax, options.stream {
            for i in choices.indices { choices[i].toolStream = ToolCallStream(syntax: syntax) }
        }
        self.state = Locked(State(choices: choices))
    }

    func start() {
        sink.onClose { [self] completed in
            if !completed { cancelUnfinished() }
        }
        for (position, job) in jobs.enumerated() {
            if state.withLock({ $0.ended }) { break }
            switch backend.submit(job.request, onEvent: { [self] event in handle(position, event) }) {
            case .accepted(let handle):
                // The run may have ended while this job was being submitted; then it must not outlive it.
                let cancelNow = state.withLock { s -> Bool in
                    s.handles[position] = handle
                    return s.ended && !s.choices[position].terminal
                }
                if cancelNow { handle.cancel() }
            case .rejected(let failure):
                handle(position, .failed(failure))
            }
        }
    }

    private func cancelUnfinished() {
        let handles = state.withLock { s -> [JobHandle] in
            s.ended = true
            return jobs.indices.filter { !s.choices[$0].terminal }.compactMap { s.handles[$0] }
        }
        for h in handles { h.cancel() }
    }

    private func handle(_ position: Int, _ event: JobEvent) {
        var cancel: [JobHandle] = []
        state.withLock { s in
            guard !s.ended else {
                if case .failed = event { s.choices[position].terminal = true }
                if case .finished = event { s.choices[position].terminal = true }
                return
            }
            switch event {
            case .admitted:
                if notes["queue_ms"] == nil { notes.set("queue_ms", CompletionRun.millis(since: submitted)) }
                if options.stream { startStream(&s) }
            case .promptLogprobs(let entries):
                promptLogprobs(position, entries, &s)
            case .token(let token):
                self.token(position, token, &s)
            case .embedding:
                break
            case .finished(let reason, let usage):
                s.choices[position].finish = reason
                s.choices[position].usage = usage
                s.choices[position].terminal = true
                if options.stream {
                    startStream(&s)
                    writeFinishChunk(position, reason, &s)
                }
                if s.choices.allSatisfy(\.terminal) { complete(&s) }
            case .failed(let failure):
                s.choices[position].terminal = true
                fail(failure, &s)
                cancel = jobs.indices.filter { !s.choices[$0].terminal }.compactMap { s.handles[$0] }
            }
        }
        // Outside the lock: a cancel may report back synchronously through `handle`.
        for h in cancel { h.cancel() }
    }

    // MARK: pieces, all called with the lock held

    private func startStream(_ s: inout State) {
        guard !s.streamStarted else { return }
        s.streamStarted = true
        var headers = OpenAICodec.sseHeaders
        headers.append(("X-Request-Id", header.id))
        sink.respond(HTTPResponse(status: 200, headers: headers, body: .stream))
        switch options.kind {
        case .chat:
            let choices = jobs.map { ChatChunkChoice(index: $0.index, role: "assistant", content: "") }
            write(chatChunk(choices))
        case .text:
            // Echo without logprobs can go out now; with logprobs it waits for the prompt's numbers.
            if options.echo && !options.wantLogprobs {
                for (position, job) in jobs.enumerated() {
                    s.choices[position].echoed = true
                    write(textChunk([CompletionChoice(index: job.index, text: job.promptText)]))
                }
            }
        }
    }

    private func promptLogprobs(_ position: Int, _ entries: [PromptTokenLogprob?], _ s: inout State) {
        guard options.kind == .text, options.echo, options.wantLogprobs, !s.choices[position].echoed else { return }
        let job = jobs[position]
        var logprobs = CompletionLogprobs()
        var offset = 0
        for (i, token) in job.request.promptTokens.enumerated() {
            let entry = i < entries.count ? entries[i] : nil
            let bytes = backend.tokenBytes(token)
            // As OpenAI does, the token's own logprob joins its alternatives (up to logprobs + 1 entries).
            logprobs.append(bytes: bytes, logprob: entry?.token.logprob, top: entry.map { [$0.token] + $0.top },
                            offset: offset)
            offset += tokenText(bytes).unicodeScalars.count
        }
        s.choices[position].echoed = true
        s.choices[position].offset = job.promptText.unicodeScalars.count
        if options.stream {
            startStream(&s)
            write(textChunk([CompletionChoice(index: job.index, text: job.promptText, logprobs: logprobs)]))
        } else {
            s.choices[position].text = job.promptText
            s.choices[position].textLogprobs = logprobs
        }
    }

    private func token(_ position: Int, _ token: GeneratedToken, _ s: inout State) {
        let index = jobs[position].index
        if options.echo && !s.choices[position].echoed {
            // No prompt logprobs were asked for (or came): the echoed text still leads the choice.
            s.choices[position].echoed = true
            s.choices[position].offset = jobs[position].promptText.unicodeScalars.count
            if !options.stream { s.choices[position].text = jobs[position].promptText }
        }
        switch options.kind {
        case .chat:
            let logprob = options.wantLogprobs ? ChatTokenLogprob(token) : nil
            if options.stream, var tools = s.choices[position].toolStream {
                startStream(&s)
                let deltas = tools.append(token.text)
                s.choices[position].toolStream = tools
                writeToolDeltas(index, deltas, logprob: logprob)
            } else if options.stream {
                startStream(&s)
                guard !token.text.isEmpty || logprob != nil else { return }
                write(chatChunk([ChatChunkChoice(index: index, content: token.text,
                                                 logprobs: logprob.map { ChatLogprobs(content: [$0]) })]))
            } else {
                s.choices[position].text += token.text
                if let logprob { s.choices[position].chatLogprobs.append(logprob) }
            }
        case .text:
            var piece: CompletionLogprobs?
            if options.wantLogprobs, let chosen = token.logprob {
                var lp = CompletionLogprobs()
                lp.append(bytes: chosen.bytes, logprob: chosen.logprob, top: token.topLogprobs, offset: s.choices[position].offset)
                s.choices[position].offset += tokenText(chosen.bytes).unicodeScalars.count
                piece = lp
            } else {
                s.choices[position].offset += token.text.unicodeScalars.count
            }
            if options.stream {
                startStream(&s)
                guard !token.text.isEmpty || piece != nil else { return }
                write(textChunk([CompletionChoice(index: index, text: token.text, logprobs: piece)]))
            } else {
                s.choices[position].text += token.text
                if let piece, var all = s.choices[position].textLogprobs {
                    all.tokens += piece.tokens
                    all.tokenLogprobs += piece.tokenLogprobs
                    all.topLogprobs += piece.topLogprobs
                    all.textOffset += piece.textOffset
                    s.choices[position].textLogprobs = all
                }
            }
        }
    }

    private func writeFinishChunk(_ position: Int, _ reason: FinishReason, _ s: inout State) {
        let index = jobs[position].index
        switch options.kind {
        case .chat:
            var finish = reason.rawValue
            if var tools = s.choices[position].toolStream {
                writeToolDeltas(index, tools.finish(), logprob: nil)
                s.choices[position].toolStream = tools
                if !ParsedReply(tools.text, syntax: tools.syntax).calls.isEmpty { finish = "tool_calls" }
            }
            write(chatChunk([ChatChunkChoice(index: index, finishReason: finish)]))
        case .text:
            if options.echo && !s.choices[position].echoed {
                // max_tokens 0 without logprobs: the echo is the whole answer.
                s.choices[position].echoed = true
                write(textChunk([CompletionChoice(index: index, text: jobs[position].promptText)]))
            }
            write(textChunk([CompletionChoice(index: index, text: "", finishReason: reason.rawValue)]))
        }
    }

    private func totalUsage(_ s: State) -> UsageBody {
        var prompt = 0
        var completion = 0
        var cachedByPrompt: [Int: Int] = [:]
        for (position, choice) in s.choices.enumerated() {
            guard let usage = choice.usage else { continue }
            // n choices of one prompt share it: count the prompt once, as OpenAI does.
            let promptIndex = jobs[position].promptIndex
            if let cached = cachedByPrompt[promptIndex] {
                // Cached only as far as every choice found it: the prompt counted once was computed once.
                cachedByPrompt[promptIndex] = Swift.min(cached, usage.cachedTokens)
            } else {
                prompt += usage.promptTokens
                cachedByPrompt[promptIndex] = usage.cachedTokens
            }
            completion += usage.completionTokens
        }
        return UsageBody(promptTokens: prompt, completionTokens: completion,
                         cachedTokens: cachedByPrompt.values.reduce(0, +))
    }

    static func millis(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) * 1e-15
        return String((ms * 10).rounded() / 10)
    }

    private func complete(_ s: inout State) {
        s.ended = true
        let usage = totalUsage(s)
        notes.set("prompt_tokens", String(usage.promptTokens))
        notes.set("completion_tokens", String(usage.completionTokens))
        if options.stream {
            if options.includeUsage {
                switch options.kind {
                case .chat: write(OpenAICodec.event(ChatCompletionChunk(header: header, choices: [], includeUsage: true, usage: usage)))
                case .text: write(OpenAICodec.event(CompletionResponse(header: header, choices: [], usage: usage)))
                }
            }
            write(OpenAICodec.done)
            sink.finish()
            return
        }
        let body: [UInt8]
        switch options.kind {
        case .chat:
            let choices = jobs.enumerated().map { position, job in
                var content: String? = s.choices[position].text
                var calls: [ToolCallBody]?
                var finish = (s.choices[position].finish ?? .stop).rawValue
                if let syntax = options.toolSyntax {
                    let reply = ParsedReply(s.choices[position].text, syntax: syntax)
                    if !reply.calls.isEmpty {
                        content = reply.content
                        calls = reply.calls.map { ToolCallBody(id: OpenAIService.newID("call_"), name: $0.name, arguments: $0.arguments) }
                        finish = "tool_calls"
                    }
                }
                return ChatChoice(index: job.index, content: content, toolCalls: calls,
                                  logprobs: options.wantLogprobs ? ChatLogprobs(content: s.choices[position].chatLogprobs) : nil,
                                  finishReason: finish)
            }
            body = OpenAICodec.json(ChatCompletionResponse(header: header, choices: choices, usage: usage))
        case .text:
            let choices = jobs.enumerated().map { position, job in
                var text = s.choices[position].text
                if options.echo && !s.choices[position].echoed { text = job.promptText + text }
                return CompletionChoice(index: job.index, text: text, logprobs: s.choices[position].textLogprobs,
                                        finishReason: (s.choices[position].finish ?? .stop).rawValue)
            }
            body = OpenAICodec.json(CompletionResponse(header: header, choices: choices, usage: usage))
        }
        sink.respond(.json(200, body, headers: [("X-Request-Id", header.id)]))
    }

    private func fail(_ failure: JobFailure, _ s: inout State) {
        s.ended = true
        let error = APIError.from(failure)
        notes.set("error", error.code ?? error.type)
        if failure == .cancelled && sink.isClientGone { return }
        if s.streamStarted {
            write(OpenAICodec.event(OpenAICodec.errorJSON(error)))
            write(OpenAICodec.done)
            sink.finish()
        } else {
            sink.respond(error.response)
        }
    }

    private func write(_ bytes: [UInt8]) { sink.write(bytes) }

    /// One chunk per delta; a token's logprobs ride on its first chunk, or on one of their own.
    private func writeToolDeltas(_ index: Int, _ deltas: [ToolCallStream.Delta], logprob: ChatTokenLogprob?) {
        var logprobs = logprob.map { ChatLogprobs(content: [$0]) }
        for delta in deltas {
            let choice: ChatChunkChoice
            switch delta {
            case .content(let text):
                choice = ChatChunkChoice(index: index, content: text, logprobs: logprobs)
            case .callStart(let call, let id, let name):
                choice = ChatChunkChoice(index: index, toolCalls: [ToolCallDeltaBody(
                    index: call, id: id, type: "function", function: .init(name: name, arguments: ""))], logprobs: logprobs)
            case .arguments(let call, let fragment):
                choice = ChatChunkChoice(index: index, toolCalls: [ToolCallDeltaBody(
                    index: call, id: nil, type: nil, function: .init(name: nil, arguments: fragment))], logprobs: logprobs)
            }
            write(chatChunk([choice]))
            logprobs = nil
        }
        if let logprobs { write(chatChunk([ChatChunkChoice(index: index, logprobs: logprobs)])) }
    }

    private func chatChunk(_ choices: [ChatChunkChoice]) -> [UInt8] {
        OpenAICodec.event(ChatCompletionChunk(header: header, choices: choices, includeUsage: options.includeUsage, usage: nil))
    }

    private func textChunk(_ choices: [CompletionChoice]) -> [UInt8] {
        OpenAICodec.event(CompletionResponse(header: header, choices: choices, usage: nil, includeUsageNull: options.includeUsage))
    }
}
