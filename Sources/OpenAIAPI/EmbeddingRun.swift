// One /v1/embeddings request in flight: one prefill-only job per input, a few at a time so a long input list
// neither fills the lot nor starves other clients, and the one JSON answer they become.
import HTTPServer
import Scheduling
import Locks

final class EmbeddingRun: Sendable {
    /// Jobs of one request in the scheduler at once.
    static let window = 8

    struct State {
        var vectors: [[Float]?]
        var promptTokens: [Int]
        var terminal: [Bool]
        var handles: [Int: JobHandle] = [:]
        var next = 0
        var inFlight = 0
        var finished = 0
        /// The answer is written (or the client left): nothing more is submitted or written.
        var ended = false
    }

    let requests: [GenerationRequest]
    let encoding: EmbeddingRequest.Encoding
    let model: String
    let sink: any ResponseSink
    let backend: any CompletionBackend
    let state: Locked<State>
    /// The access log's fields: the first job's queue time, the prompt tokens of all inputs, the error if one ends it.
    let notes: ExchangeNotes
    let submitted = ContinuousClock.now

    init(requests: [GenerationRequest], encoding: EmbeddingRequest.Encoding, model: String, sink: any ResponseSink,
         backend: any CompletionBackend, notes: ExchangeNotes = ExchangeNotes()) {
        (self.requests, self.encoding, self.model, self.sink, self.backend) = (requests, encoding, model, sink, backend)
        self.notes = notes
        let n = requests.count
        state = Locked(State(vectors: Array(repeating: nil, count: n), promptTokens: Array(repeating: 0, count: n),
                            terminal: Array(repeating: false, count: n)))
    }

    func start() {
        sink.onClose { [self] completed in
            if !completed { cancelUnfinished() }
        }
        pump()
    }

    /// Submits jobs until the window is full. Called from the HTTP thread and from job events; the lock only
    /// claims the next position, so a submit (which may report back synchronously) never runs under it.
    private func pump() {
        while true {
            let claimed = state.withLock { s -> Int? in
                guard !s.ended, s.inFlight < Self.window, s.next < requests.count else { return nil }
                s.next += 1
                s.inFlight += 1
                return s.next - 1
            }
            guard let position = claimed else { return }
            switch backend.submit(requests[position], onEvent: { [self] event in handle(position, event) }) {
            case .accepted(let handle):
                let cancelNow = state.withLock { s -> Bool in
                    s.handles[position] = handle
                    return s.ended && !s.terminal[position]
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
            return s.handles.filter { !s.terminal[$0.key] }.map(\.value)
        }
        for h in handles { h.cancel() }
    }

    private func handle(_ position: Int, _ event: JobEvent) {
        enum Next { case nothing, pump, respond([UInt8]), fail(JobFailure, [JobHandle]) }
        let next = state.withLock { s -> Next in
            switch event {
            case .embedding(let vector):
                s.vectors[position] = vector
                return .nothing
            case .finished(_, let usage):
                s.terminal[position] = true
                s.inFlight -= 1
                s.finished += 1
                s.promptTokens[position] = usage.promptTokens
                guard !s.ended else { return .nothing }
                guard s.finished == requests.count else { return .pump }
                s.ended = true
                notes.set("prompt_tokens", String(s.promptTokens.reduce(0, +)))
                notes.set("completion_tokens", "0")
                let items = s.vectors.enumerated().map { i, v in EmbeddingItem(index: i, vector: v ?? [], encoding: encoding) }
                return .respond(OpenAICodec.json(EmbeddingList(data: items, model: model,
                                                               promptTokens: s.promptTokens.reduce(0, +))))
            case .failed(let failure):
                s.terminal[position] = true
                s.inFlight -= 1
                guard !s.ended else { return .nothing }
                s.ended = true
                return .fail(failure, s.handles.filter { !s.terminal[$0.key] }.map(\.value))
            case .admitted:
                if notes["queue_ms"] == nil { notes.set("queue_ms", CompletionRun.millis(since: submitted)) }
                return .nothing
            case .promptLogprobs, .token:
                return .nothing
            }
        }
        switch next {
        case .nothing: break
        case .pump: pump()
        case .respond(let body):
            // The first job's id is the request's: /v1/jobs/{id} finds it.
            sink.respond(.json(200, body, headers: [("X-Request-Id", requests[0].id)]))
        case .fail(let failure, let others):
            let error = APIError.from(failure)
            notes.set("error", error.code ?? error.type)
            if !(failure == .cancelled && sink.isClientGone) { sink.respond(error.response) }
            for h in others { h.cancel() }
        }
    }
}
