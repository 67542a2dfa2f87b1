// The scheduler over the real engine and tokenizer: greedy text is the same alone, batched, after a preemption and
// after a suspension.
import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Scheduling
import Inference

@Suite(.serialized) struct RealModelSchedulerTests {
    private struct Loaded {
        let engine: LlamaEngine
        let tokenizer: Tokenizer
    }

    private static let loaded: Result<Loaded, any Error>? = {
        guard let path = TestModel.path else { return nil }
        return Result {
            let file = try GGUFFile(path: path)
            return Loaded(engine: try LlamaEngine(model: file, threads: 2, kvCacheTokens: 4096),
                          tokenizer: try Tokenizer(gguf: file))
        }
    }()

    private func chat(_ t: Tokenizer, _ question: String) -> [Int32] {
        t.encode("<|im_start|>user\n\(question)<|im_end|>\n<|im_start|>assistant\n", addBOS: false, parseSpecial: true)
    }

    private func greedy(_ id: String, _ prompt: [Int32], max: Int, priority: Priority = .normal) -> GenerationRequest {
        var p = SamplingParameters()
        p.temperature = 0
        return GenerationRequest(id: id, model: "smollm2", promptTokens: prompt, maxTokens: max, sampling: p,
                                 priority: priority)
    }

    /// Runs `requests` through a fresh scheduler (all submitted at once) and returns each job's text.
    private func run(_ m: Loaded, _ requests: [GenerationRequest], clock: ManualClock? = nil,
                     config: SchedulerConfig, during: ((Scheduler, Recorder) async -> Void)? = nil) async -> Recorder {
        let rec = Recorder()
        let s = Scheduler(config: config, engine: m.engine, decoder: m.tokenizer, observer: rec,
                          clock: clock ?? SystemClock())
        s.start()
        if let during {
            await during(s, rec)
        } else {
            for r in requests { s.submitTelling(r, onEvent: rec.sink(r.id)) }
        }
        _ = await eventually(600) { rec.terminalOrder.count == requests.count }
        #expect(s.stats().availableBlocks == s.stats().totalBlocks)
        s.shutdown(grace: 0)
        return rec
    }

    @Test func batchedAndPreemptedGreedyTextEqualsEachJobAlone() async throws {
        guard let loaded = Self.loaded else {
            print("RealModelSchedulerTests skipped: default model missing (set VALET_TEST_MODEL or run `make model`)")
            return
        }
        let m = try loaded.get()
        let t = m.tokenizer
        let questions = ["Which planet is known as the Red Planet?", "What is the largest ocean on Earth?",
                         "Name three primary colors."]
        let requests = questions.enumerated().map { greedy("q\($0.offset)", chat(t, $0.element), max: 24) }

        var alone: [String: String] = [:]
        for r in requests {
            let rec = await run(m, [r], config: SchedulerConfig(maxBatch: 1))
            alone[r.id] = rec.text(r.id)
            #expect(rec.terminal(r.id) != nil && rec.failure(r.id) == nil)
        }
        #expect(alone["q0"]!.contains("Mars"))
        #expect(alone["q1"]!.contains("Pacific"))

        for r in requests { print("[scheduler e2e] \(r.id): \(alone[r.id]!.debugDescription)") }
        let batched = await run(m, requests, config: SchedulerConfig(maxBatch: 8, prefillChunk: 32))
        for r in requests { #expect(batched.text(r.id) == alone[r.id], "\(r.id) batched") }

        // Preemption: the low job fills the pool; a high one arrives, waits past preemptAfter (manual clock), and
        // takes the room; the low one resumes by recomputing prompt + generated tokens.
        let low = greedy("low", chat(t, questions[0]), max: 40, priority: .low)
        let high = greedy("high", chat(t, questions[1]), max: 24, priority: .high)
        let lowAlone = await run(m, [low], config: SchedulerConfig(maxBatch: 1)).text("low")
        let lowCost = (low.promptTokens.count + 40 + 15) / 16
        let highCost = (high.promptTokens.count + 24 + 15) / 16
        let clock = ManualClock()
        let config = SchedulerConfig(totalBlocks: lowCost + highCost - 1, preemptAfter: 2)
        let rec = await run(m, [low, high], clock: clock, config: config) { s, rec in
            submitHighAtFourthToken(s, rec, low: low, high: high) { clock.advance(3) }
        }
        #expect(rec.preempted == ["low"])
        #expect(rec.terminalOrder == ["high", "low"])
        #expect(rec.text("low") == lowAlone)
        #expect(rec.text("high") == alone["q1"])
        #expect(rec.tokens("low").count == 40 || rec.finish("low") == .stop)

        // Suspension: blocks are plentiful but the one decode row is taken; the high job takes it at once, the low
        // one keeps its KV blocks untouched while it waits and continues from them (no recompute).
        let rowRec = await run(m, [low, high], config: SchedulerConfig(maxBatch: 1)) { s, rec in
            submitHighAtFourthToken(s, rec, low: low, high: high)
        }
        #expect(rowRec.suspended == ["low"])
        #expect(rowRec.preempted.isEmpty)
        #expect(rowRec.terminalOrder == ["high", "low"])
        #expect(rowRec.text("low") == lowAlone)
        #expect(rowRec.text("high") == alone["q1"])
    }

    /// A shared system prompt, three questions and their repeats, with logprobs, and a scored prompt: run once with
    /// the cache off, then with it on so that later jobs in each batch hit what earlier ones cached. Every greedy
    /// token, logprob and prompt score must be the same bit for bit.
    @Test func theCacheChangesNoTokenOrLogprob() async throws {
        guard let loaded = Self.loaded else {
            print("RealModelSchedulerTests skipped: default model missing (set VALET_TEST_MODEL or run `make model`)")
            return
        }
        let m = try loaded.get()
        let t = m.tokenizer
        let system = "You are a careful assistant. Answer in one short sentence, name the thing asked for, and do "
            + "not add anything else. Facts only: planets, oceans, colours and animals are all fine topics."
        func ask(_ id: String, _ question: String) -> GenerationRequest {
            let tokens = t.encode("<|im_start|>system\n\(system)<|im_end|>\n<|im_start|>user\n\(question)<|im_end|>\n"
                                  + "<|im_start|>assistant\n", addBOS: false, parseSpecial: true)
            var r = greedy(id, tokens, max: 12)
            r.logprobs = 3
            return r
        }
        let questions = ["Which planet is known as the Red Planet?", "What is the largest ocean on Earth?",
                         "Name three primary colors."]
        let firstWave = questions.enumerated().map { ask("a\($0.offset)", $0.element) }
        let secondWave = questions.enumerated().map { ask("b\($0.offset)", $0.element) }
        var scoring = greedy("score", firstWave[0].promptTokens, max: 0)
        scoring.promptLogprobs = true
        scoring.logprobs = 2
        // Scored again with another continuation: it takes the first scorer's blocks and their kept scores.
        var rescoring = greedy("rescore", Array(firstWave[0].promptTokens.dropLast(3)) + t.encode(" Mars", addBOS: false, parseSpecial: false),
                               max: 0)
        rescoring.promptLogprobs = true
        rescoring.logprobs = 1

        func transcripts(cache: Bool) async -> ([String: [String]], PrefixCacheStats) {
            let rec = Recorder()
            let s = Scheduler(config: SchedulerConfig(maxBatch: 8, prefillChunk: 64, prefixCache: cache, modelIdentity: "smollm2"),
                              engine: m.engine, decoder: t, observer: rec, clock: SystemClock())
            s.start()
            var all: [GenerationRequest] = []
            for wave in [firstWave, secondWave + [scoring], [rescoring]] {
                all += wave
                for r in wave { s.submitTelling(r, onEvent: rec.sink(r.id)) }
                _ = await eventually(600) { rec.terminalOrder.count == all.count }
            }
            #expect(s.stats().availableBlocks == s.stats().totalBlocks)
            let stats = s.stats().prefixCache
            s.shutdown(grace: 0)
            var out: [String: [String]] = [:]
            for r in all {
                out[r.id] = rec.events(r.id).compactMap { e in
                    switch e {
                    case .token(let g): "\(g.token) \(g.logprob?.logprob ?? 1) \(g.topLogprobs.map { "\($0.token):\($0.logprob)" })"
                    case .promptLogprobs(let p): p.map { "\($0?.token.logprob ?? 1) \($0?.top.map(\.token) ?? [])" }.joined(separator: ",")
                    case .finished(let f, _): "\(f)"
                    case .failed(let f): "\(f)"
                    default: nil
                    }
                }
            }
            return (out, stats)
        }
        let (cold, coldStats) = await transcripts(cache: false)
        let (warm, warmStats) = await transcripts(cache: true)
        #expect(coldStats.hitTokens == 0)
        // The second and third questions of the first wave share the system prompt; the second wave repeats all.
        let systemBlocks = (firstWave.map(\.promptTokens.count).min()! - 1) / 16
        #expect(warmStats.hitTokens >= (2 + 3) * systemBlocks * 16 + (scoring.promptTokens.count - 3) / 16 * 16)
        for id in cold.keys.sorted() {
            #expect(warm[id] == cold[id], "\(id)")
            #expect(cold[id]!.count > 1, "\(id)")
        }
    }
}

/// Submits `low`, then `high` from the low job's 4th token event, on the engine thread, so a loaded machine cannot
/// let the low job finish before the high one arrives; `then` runs right after that submission.
private func submitHighAtFourthToken(_ s: Scheduler, _ rec: Recorder, low: GenerationRequest, high: GenerationRequest,
                                     then: @escaping @Sendable () -> Void = {}) {
    let lowSink = rec.sink(low.id), highSink = rec.sink(high.id)
    let seen = TokenCounter()
    s.submitTelling(low) { event in
        lowSink(event)
        if case .token = event, seen.count.add(1, ordering: .relaxed).newValue == 4 {
            s.submitTelling(high, onEvent: highSink)
            then()
        }
    }
}

private final class TokenCounter: Sendable {
    let count = Atomic<Int>(0)
}
