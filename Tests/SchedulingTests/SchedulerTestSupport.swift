// Fakes for scheduler tests: a step engine with its own paged "KV pool", a letter decoder, a manual clock, a recorder.
import Foundation
import Locks
import Testing
@testable import Scheduling
import Inference

/// Writes fed tokens into a pool addressed through each sequence's block table and favours a token derived from the
/// whole cached history read back through that table — so a wrong table, a wrongly shared block, a bad cache hit or
/// a bad recompute after preemption changes the generated text.
final class FakeEngine: StepEngine {
    let vocabSize: Int
    let blockSize = 16
    let totalBlocks: Int
    let contextLength: Int
    private let stepDelay: Double
    /// Optional step duration from the step's composition (tokens fed per sequence), slept like `stepDelay`.
    private let stepSeconds: (@Sendable ([Int]) -> Double)?
    private let onStep: (@Sendable (Int) -> Void)?
    private struct State {
        var pool: [Int32]
        var steps = 0
        var violations: [String] = []
        var composition: [[Int]] = []
        /// Every sequence's part of every step: the first position fed and how many tokens.
        var feeds: [(position: Int, count: Int)] = []
        var copies = 0
    }
    private let state: Locked<State>

    init(vocab: Int = 64, blocks: Int, context: Int = 4096, stepDelay: Double = 0,
         stepSeconds: (@Sendable ([Int]) -> Double)? = nil, onStep: (@Sendable (Int) -> Void)? = nil) {
        vocabSize = vocab
        totalBlocks = blocks
        contextLength = context
        self.stepDelay = stepDelay
        self.stepSeconds = stepSeconds
        self.onStep = onStep
        state = Locked(State(pool: Array(repeating: -1, count: blocks * 16)))
    }

    var violations: [String] { state.withLock { $0.violations } }
    var composition: [[Int]] { state.withLock { $0.composition } }
    var feeds: [(position: Int, count: Int)] { state.withLock { $0.feeds } }
    /// Tokens fed over all steps: what a cache hit saves.
    var tokensFed: Int { state.withLock { $0.composition.joined().reduce(0, +) } }

    /// The token this fake favours after `history` (the pure reference the scheduler must reproduce).
    static func favoured(_ history: [Int32], vocab: Int) -> Int32 {
        var h: UInt64 = 1469598103934665603
        for t in history { h = (h ^ UInt64(UInt32(bitPattern: t))) &* 1099511628211 }
        return Int32(truncatingIfNeeded: (UInt64(history.count - 1) &* 7 &+ (h >> 17)) % UInt64(vocab))
    }

    func copyRows(from source: Int32, to destination: Int32, tokens: Int) {
        state.withLock { s in
            s.copies += 1
            for k in 0..<tokens { s.pool[Int(destination) * 16 + k] = s.pool[Int(source) * 16 + k] }
        }
    }

    /// Row copies the scheduler asked for (cached rows seeding a sequence's own block).
    var copies: Int { state.withLock { $0.copies } }

    func step(_ batch: [StepSequence], emit: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        let step = state.withLock { s -> Int in
            s.steps += 1
            s.composition.append(batch.map(\.tokens.count))
            s.feeds += batch.map { ($0.position, $0.tokens.count) }
            return s.steps
        }
        onStep?(step)
        let delay = stepDelay + (stepSeconds?(batch.map(\.tokens.count)) ?? 0)
        if delay > 0 { usleep(UInt32(delay * 1e6)) }
        var rows: [(Int, Int, [Float])] = []
        state.withLock { s in
            // Sequences may share cached prefix blocks, but a block one of them writes belongs to it alone.
            for (i, seq) in batch.enumerated() {
                let end = seq.position + seq.tokens.count
                if (end + 15) / 16 > seq.blockTable.count { s.violations.append("block table too short") }
                let written = Set((Swift.max(seq.position, seq.writesFrom)..<end).map { seq.blockTable[$0 / 16] })
                for (j, other) in batch.enumerated() where j != i {
                    for b in other.blockTable where written.contains(b) {
                        s.violations.append("block \(b) written while shared")
                    }
                }
            }
            for (i, seq) in batch.enumerated() {
                for (k, t) in seq.tokens.enumerated() {
                    let pos = seq.position + k
                    let b = Int(seq.blockTable[pos / 16])
                    if pos >= seq.writesFrom {
                        s.pool[b * 16 + pos % 16] = t
                    } else if s.pool[b * 16 + pos % 16] != t {
                        s.violations.append("position \(pos) fed again without a write, but its block holds another token")
                    }
                    if seq.logits == .hiddenStates {
                        // A "hidden state" made of the token and its position, so pooling is checkable by hand.
                        rows.append((i, k, [Float(t), Float(pos), 1, 0]))
                        continue
                    }
                    let wanted = seq.logits == .all || (seq.logits == .last && k == seq.tokens.count - 1)
                    guard wanted else { continue }
                    let history = (0...pos).map { p in s.pool[Int(seq.blockTable[p / 16]) * 16 + p % 16] }
                    let fav = Int(Self.favoured(history, vocab: vocabSize))
                    var row = [Float](repeating: 0, count: vocabSize)
                    for v in 0..<vocabSize { row[v] = Float((v * 13 + pos) % 7) * 0.1 }
                    row[fav] = 8
                    rows.append((i, k, row))
                }
            }
        }
        for (i, k, row) in rows {
            var r = row
            r.withUnsafeMutableBufferPointer { emit(i, k, $0) }
        }
    }
}

struct LetterDecoder: TokenDecoding {
    var endOfGenerationTokens: Set<Int32> = []
    func bytes(of token: Int32) -> [UInt8] {
        [UInt8(ascii: "a") + UInt8(Int(token) % 26)]
    }
}

final class ManualClock: SchedulerClock {
    private let t = Locked<Double>(1000)
    func monotonic() -> Double { t.withLock { $0 } }
    func unix() -> Double { 1_700_000_000 + monotonic() }
    func advance(_ s: Double) { t.withLock { $0 += s } }
}

/// Everything the scheduler said, per job and in global order.
final class Recorder: SchedulerObserver {
    private struct State {
        var events: [String: [JobEvent]] = [:]
        var admittedOrder: [String] = []
        var terminalOrder: [String] = []
        var afterTerminal: [String] = []
        var finished: [JobSnapshot] = []
        var preempted: [String] = []
        var suspended: [String] = []
        /// Every token event, in the order the scheduler emitted them (job id per token).
        var tokenOrder: [String] = []
    }
    private let state = Locked(State())

    func sink(_ id: String) -> @Sendable (JobEvent) -> Void {
        { [self] e in
            state.withLock { s in
                if s.terminalOrder.contains(id) { s.afterTerminal.append(id) }
                s.events[id, default: []].append(e)
                switch e {
                case .admitted: s.admittedOrder.append(id)
                case .token: s.tokenOrder.append(id)
                case .finished, .failed: s.terminalOrder.append(id)
                default: break
                }
            }
        }
    }

    func jobFinished(_ job: JobSnapshot) { state.withLock { $0.finished.append(job) } }
    func jobPreempted(id: String, priority: Priority) { state.withLock { $0.preempted.append(id) } }
    func jobSuspended(id: String, priority: Priority) { state.withLock { $0.suspended.append(id) } }

    var admittedOrder: [String] { state.withLock { $0.admittedOrder } }
    var terminalOrder: [String] { state.withLock { $0.terminalOrder } }
    var afterTerminal: [String] { state.withLock { $0.afterTerminal } }
    var finished: [JobSnapshot] { state.withLock { $0.finished } }
    var preempted: [String] { state.withLock { $0.preempted } }
    var suspended: [String] { state.withLock { $0.suspended } }
    var tokenOrder: [String] { state.withLock { $0.tokenOrder } }
    func events(_ id: String) -> [JobEvent] { state.withLock { $0.events[id] ?? [] } }

    func terminal(_ id: String) -> JobEvent? {
        events(id).last.flatMap { e in
            switch e {
            case .finished, .failed: e
            default: nil
            }
        }
    }
    func tokens(_ id: String) -> [Int32] {
        events(id).compactMap { if case .token(let t) = $0 { t.token } else { nil } }
    }
    func text(_ id: String) -> String {
        events(id).compactMap { if case .token(let t) = $0 { t.text } else { nil } }.joined()
    }
    func failure(_ id: String) -> JobFailure? {
        if case .failed(let f) = terminal(id) { f } else { nil }
    }
    func finish(_ id: String) -> FinishReason? {
        if case .finished(let r, _) = terminal(id) { r } else { nil }
    }
}

/// Polls until `condition` holds (a safety bound, not a timing assertion).
func eventually(_ seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

func request(_ id: String, prompt: Int = 8, max: Int = 8, priority: Priority = .normal,
             timeout: Double? = nil, stop: [String] = [], seedTokens: Int32 = 1) -> GenerationRequest {
    var sampling = SamplingParameters()
    sampling.temperature = 0
    return GenerationRequest(
        id: id, model: "fake", promptTokens: (0..<prompt).map { Int32($0 % 50) &+ seedTokens }, maxTokens: max,
        sampling: sampling, stop: stop, priority: priority, queueTimeout: timeout)
}

/// What greedy decoding with the fake engine must produce for `prompt`, alone and unbatched.
func referenceTokens(prompt: [Int32], max: Int, vocab: Int = 64, eog: Set<Int32> = []) -> [Int32] {
    var history = prompt
    var out: [Int32] = []
    while out.count < max {
        let t = FakeEngine.favoured(history, vocab: vocab)
        out.append(t)
        history.append(t)
        if eog.contains(t) { break }
    }
    return out
}

/// Handles of submitted jobs, so tests can cancel by id as a client's disconnect would.
private let submittedHandles = Locked<[String: JobHandle]>([:])

extension Scheduler {
    /// Submits, keeping the handle, and tells a rejection to `onEvent` as a `.failed` event: tests then read every
    /// job's ending from one place, whether it came back from `submit` or later from the loop.
    @discardableResult
    func submitTelling(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission {
        let submission = submit(request, onEvent: onEvent)
        switch submission {
        case .accepted(let handle):
            submittedHandles.withLock { $0["\(ObjectIdentifier(self))/\(request.id)"] = handle }
        case .rejected(let failure):
            onEvent(.failed(failure))
        }
        return submission
    }

    func cancel(id: String) {
        submittedHandles.withLock { $0["\(ObjectIdentifier(self))/\(id)"] }?.cancel()
    }
}
