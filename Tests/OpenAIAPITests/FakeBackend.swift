// A CompletionBackend the tests drive by hand: it keeps each submitted job and its event callback, refuses the
// jobs it was told to, and records cancels.
import Locks
import Testing
@testable import OpenAIAPI
@testable import Scheduling
import Inference

final class FakeBackend: CompletionBackend {
    struct Job {
        var request: GenerationRequest
        var onEvent: @Sendable (JobEvent) -> Void
        var ended = false
    }

    let contextLength = 2048
    let vocabularySize = 256
    let embeddingDimensions = 4
    let pooling = Pooling.mean
    let samplingDefaults = SamplingDefaults.llamaCpp
    /// Submissions at these positions (in submit order) are refused with the failure.
    let rejections: [Int: JobFailure]
    private let jobs = Locked<[Job]>([])
    private let cancels = Locked<[String]>([])

    init(rejecting rejections: [Int: JobFailure] = [:]) { self.rejections = rejections }

    /// One token per byte of the text, so prompts and logprobs stay easy to count.
    func tokenize(prompt: String) throws -> [Int32] { prompt.utf8.map { Int32($0) } }
    func tokenize(text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        (addSpecial ? [1] : []) + text.utf8.map { Int32($0) }
    }
    let toolCallSyntax = ToolCallSyntax.hermes
    func tokenize(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> [Int32] {
        (messages.map(\.content) + tools.map(\.name)).flatMap { $0.utf8.map { Int32($0) } }
    }
    /// `role: content` lines (and `tools: names`, calls as `-> name(arguments)`), so a test can see which messages
    /// and tools reached the template and in what order.
    func render(chat messages: [ChatMessageInput], tools: [ToolSpec]) throws -> String {
        (tools.isEmpty ? "" : "tools: \(tools.map(\.name).joined(separator: ","))\n")
            + messages.map { m in
                "\(m.role): \(m.content)\n" + m.toolCalls.map { "-> \($0.name)(\($0.arguments))\n" }.joined()
            }.joined()
    }
    func detokenize(_ tokens: [Int32]) -> String {
        String(decoding: tokens.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
    }
    func tokenBytes(_ token: Int32) -> [UInt8] { [UInt8(truncatingIfNeeded: token)] }

    func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission {
        let position = jobs.withLock { jobs -> Int in
            jobs.append(Job(request: request, onEvent: onEvent, ended: rejections[jobs.count] != nil))
            return jobs.count - 1
        }
        if let failure = rejections[position] { return .rejected(failure) }
        return .accepted(JobHandle(id: request.id, seq: UInt64(position)) { [self] seq in cancel(Int(seq)) })
    }

    var submitted: [GenerationRequest] { jobs.withLock { $0.map(\.request) } }
    var cancelled: [String] { cancels.withLock { $0 } }

    /// Delivers one event, as the engine thread would.
    func emit(_ position: Int, _ event: JobEvent) {
        let onEvent = jobs.withLock { jobs -> (@Sendable (JobEvent) -> Void)? in
            guard !jobs[position].ended else { return nil }
            if case .finished = event { jobs[position].ended = true }
            if case .failed = event { jobs[position].ended = true }
            return jobs[position].onEvent
        }
        onEvent?(event)
    }

    func token(_ position: Int, _ text: String, logprob: Float? = nil) {
        let bytes = Array(text.utf8)
        emit(position, .token(GeneratedToken(
            token: Int32(bytes.first ?? 0), text: text,
            logprob: logprob.map { TokenLogprob(token: Int32(bytes.first ?? 0), bytes: bytes, logprob: $0) })))
    }

    /// A cancel ends a parked job at once, on the cancelling thread, as the scheduler does.
    private func cancel(_ position: Int) {
        let id = jobs.withLock { $0[position].request.id }
        cancels.withLock { $0.append(id) }
        emit(position, .failed(.cancelled))
    }
}
