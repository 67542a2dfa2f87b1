// The prefix cache through the whole scheduler with the fake engine (whose output depends on every token read back
// through the block table): hits, identical output with the cache on and off, salts, n choices, preemption.
import Foundation
import Synchronization
import Testing
@testable import Scheduling
import Inference

private func scheduler(blocks: Int = 64, cache: Bool = true, _ edit: (inout SchedulerConfig) -> Void = { _ in })
    -> (Scheduler, FakeEngine, Recorder)
{
    let engine = FakeEngine(blocks: blocks)
    var config = SchedulerConfig(preemptAfter: 1000, agingSeconds: 0, prefixCache: cache, modelIdentity: "fake")
    edit(&config)
    let rec = Recorder()
    let s = Scheduler(config: config, engine: engine, decoder: LetterDecoder(), observer: rec, clock: SystemClock())
    return (s, engine, rec)
}

private func prompt(_ count: Int, document: Int32 = 0) -> [Int32] {
    (0..<count).map { Int32(($0 * 7 + Int(document) * 13) % 60) }
}

private func job(_ id: String, _ tokens: [Int32], max: Int = 6, salt: String? = nil, logprobs: Int? = nil,
                 scoring: Bool = false) -> GenerationRequest {
    var sampling = SamplingParameters()
    sampling.temperature = 0
    return GenerationRequest(id: id, model: "fake", promptTokens: tokens, maxTokens: max, sampling: sampling,
                             logprobs: logprobs, promptLogprobs: scoring, cacheSalt: salt)
}

private func usage(_ rec: Recorder, _ id: String) -> Usage? {
    if case .finished(_, let u) = rec.terminal(id) { u } else { nil }
}

/// Submits and waits until every job in `requests` has ended.
private func runAll(_ s: Scheduler, _ rec: Recorder, _ requests: [GenerationRequest]) async -> Bool {
    let before = rec.terminalOrder.count
    for r in requests { s.submitTelling(r, onEvent: rec.sink(r.id)) }
    return await eventually { rec.terminalOrder.count == before + requests.count }
}

/// What a job said, in a form two runs can be compared by: tokens, their logprobs and prompt scores.
private func transcript(_ rec: Recorder, _ id: String) -> [String] {
    rec.events(id).compactMap { e in
        switch e {
        case .token(let t): "\(t.token) \(t.logprob?.logprob ?? 1) \(t.topLogprobs.map { "\($0.token):\($0.logprob)" })"
        case .promptLogprobs(let p): p.map { "\($0?.token.token ?? -1):\($0?.token.logprob ?? 1):\($0?.top.count ?? 0)" }.joined(separator: ",")
        case .finished(let r, let u): "\(r) \(u.promptTokens) \(u.completionTokens)"
        default: nil
        }
    }
}

@Suite(.serialized) struct PrefixCacheSchedulerTests {
    @Test func aRepeatedPromptReusesItsFullBlocksAndSaysSo() async {
        let (s, engine, rec) = scheduler()
        s.start()
        let p = prompt(50)
        #expect(await runAll(s, rec, [job("a", p)]))
        let fedFirst = engine.tokensFed
        #expect(await runAll(s, rec, [job("b", p)]))
        // (50 - 1) / 16 = 3 blocks, and 48 of the 4th block's rows from a's tail: only the last prompt token, whose
        // logits are needed, is computed.
        #expect(usage(rec, "a")?.cachedTokens == 0)
        #expect(usage(rec, "b")?.cachedTokens == 49)
        #expect(engine.copies == 1)
        #expect(engine.tokensFed - fedFirst == fedFirst - 49)
        #expect(engine.feeds.contains { $0.position == 49 && $0.count == 1 })
        #expect(rec.tokens("b") == referenceTokens(prompt: p, max: 6))
        #expect(rec.tokens("a") == rec.tokens("b"))
        let st = s.stats()
        // b's own tail equals a's, so it is freed rather than cached twice.
        #expect(st.prefixCache == PrefixCacheStats(enabled: true, cachedBlocks: 4, queryTokens: 100, hitTokens: 49))
        #expect(st.availableBlocks == st.totalBlocks)
        let snap = rec.finished.first { $0.id == "b" }!
        #expect(snap.cachedTokens == 49 && snap.costBlocks == 4 - 3)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func aConversationsNextTurnSeedsItselfFromThePreviousTurnsLastBlock() async {
        let (s, engine, rec) = scheduler()
        s.start()
        let p = prompt(40)
        #expect(await runAll(s, rec, [job("turn1", p)]))
        // The next turn re-sends the history: the prompt, the five answer tokens that were fed, and a new message.
        let history = p + rec.tokens("turn1").prefix(5) + [1, 2, 3]
        #expect(await runAll(s, rec, [job("turn2", history)]))
        // Two full blocks hit; turn 1's partly filled third block seeds rows 32..<45.
        #expect(usage(rec, "turn2")?.cachedTokens == 45)
        #expect(engine.copies == 1)
        #expect(rec.tokens("turn2") == referenceTokens(prompt: history, max: 6))
        #expect(s.stats().availableBlocks == s.stats().totalBlocks)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func identicalShortPromptsArrivingTogetherComputeOnlyTheirLastTokenOnceOneHasRun() async {
        let (s, engine, rec) = scheduler()
        s.start()
        let p = prompt(12)
        #expect(await runAll(s, rec, [job("warm", p, max: 1)]))
        let fed = engine.tokensFed
        #expect(await runAll(s, rec, (0..<8).map { job("r\($0)", p, max: 1) }))
        #expect((0..<8).allSatisfy { usage(rec, "r\($0)")?.cachedTokens == 11 })
        #expect(engine.tokensFed - fed == 8)
        #expect((0..<8).allSatisfy { rec.tokens("r\($0)") == rec.tokens("warm") })
        #expect(s.stats().availableBlocks == s.stats().totalBlocks)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func aDifferentSaltFindsNothingAndTheSameSaltHits() async {
        let (s, _, rec) = scheduler()
        s.start()
        let p = prompt(40)
        #expect(await runAll(s, rec, [job("a1", p, salt: "tenant-a")]))
        #expect(await runAll(s, rec, [job("b1", p, salt: "tenant-b")]))
        #expect(await runAll(s, rec, [job("plain", p)]))
        #expect(await runAll(s, rec, [job("a2", p, salt: "tenant-a")]))
        #expect(usage(rec, "b1")?.cachedTokens == 0 && usage(rec, "plain")?.cachedTokens == 0)
        // Two full blocks and the seeded rows of the third, up to the last prompt token.
        #expect(usage(rec, "a2")?.cachedTokens == 39)
        #expect(rec.tokens("a2") == referenceTokens(prompt: p, max: 6))
        s.shutdown(grace: 0)
    }

    /// The same requests, waves of repeats and fresh prompts mixed in each batch, with logprobs and prompt scoring:
    /// the cache must not change one token, logprob or score.
    @Test func outputIsIdenticalWithTheCacheOnAndOffInBatchesMixingHitsAndMisses() async {
        func waves() -> [[GenerationRequest]] {
            var out: [[GenerationRequest]] = []
            for w in 0..<4 {
                var wave: [GenerationRequest] = []
                for d in 0..<3 {
                    // A shared system prompt, then a per-wave turn: later waves re-send earlier history.
                    let history = prompt(40 + 16 * w + d, document: Int32(d))
                    wave.append(job("w\(w)d\(d)", history, max: 5 + w, logprobs: w % 2 == 0 ? 2 : nil))
                }
                wave.append(job("w\(w)fresh", prompt(30, document: Int32(10 + w)), max: 4))
                wave.append(job("w\(w)score", prompt(37, document: 1), max: 2, logprobs: 1, scoring: true))
                out.append(wave)
            }
            return out
        }
        var transcripts: [Bool: [String: [String]]] = [:]
        var hits = 0
        for cache in [false, true] {
            let (s, engine, rec) = scheduler(blocks: 48, cache: cache) { $0.maxBatch = 4; $0.prefillChunk = 40 }
            s.start()
            for wave in waves() { #expect(await runAll(s, rec, wave)) }
            var t: [String: [String]] = [:]
            for wave in waves() { for r in wave { t[r.id] = transcript(rec, r.id) } }
            transcripts[cache] = t
            #expect(engine.violations.isEmpty)
            #expect(s.stats().availableBlocks == 48)
            if cache { hits = s.stats().prefixCache.hitTokens } else { #expect(s.stats().prefixCache.hitTokens == 0) }
            s.shutdown(grace: 0)
        }
        #expect(hits > 200)
        #expect(transcripts[true]! == transcripts[false]!)
        for (id, t) in transcripts[true]! { #expect(!t.isEmpty, "\(id)") }
    }

    @Test func choicesSubmittedTogetherPrefillTheirPromptOnce() async {
        var fed: [Bool: Int] = [:]
        for cache in [false, true] {
            let (s, engine, rec) = scheduler(cache: cache)
            let p = prompt(70)
            let choices = (0..<3).map { job("c\($0)", p, max: 4) }
            for r in choices { s.submitTelling(r, onEvent: rec.sink(r.id)) }
            s.start()
            #expect(await eventually { rec.terminalOrder.count == 3 })
            fed[cache] = engine.tokensFed
            for r in choices { #expect(rec.tokens(r.id) == referenceTokens(prompt: p, max: 4)) }
            if cache {
                // The first prefills 70 tokens; the others wait for its blocks and compute only the last 6.
                let cached = choices.map { usage(rec, $0.id)?.cachedTokens ?? -1 }.sorted()
                #expect(cached == [0, 64, 64])
            }
            #expect(engine.violations.isEmpty)
            s.shutdown(grace: 0)
        }
        #expect(fed[false]! - fed[true]! == 2 * 64)
    }

    @Test func aPreemptedJobResumesFromItsCachedBlocks() async {
        let clock = ManualClock()
        let engine = FakeEngine(blocks: 15, stepDelay: 0.002)
        let rec = Recorder()
        let s = Scheduler(config: SchedulerConfig(preemptAfter: 2, agingSeconds: 0, modelIdentity: "fake"),
                          engine: engine, decoder: LetterDecoder(), observer: rec, clock: clock)
        let low = job("L", prompt(40), max: 180)  // 14 blocks
        var high = job("H", prompt(10, document: 5), max: 20)  // 2 blocks
        high.priority = .high
        s.start()
        s.submitTelling(low, onEvent: rec.sink("L"))
        #expect(await eventually { rec.tokens("L").count >= 5 })
        s.submitTelling(high, onEvent: rec.sink("H"))
        clock.advance(3)
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.preempted == ["L"])
        #expect(rec.tokens("L") == referenceTokens(prompt: low.promptTokens, max: 180))
        // The resumption fed its history from the cache, not from position 0: only L's and H's first prefills did.
        #expect(engine.feeds.filter { $0.position == 0 }.count == 2)
        #expect(engine.copies >= 1)
        // A recompute is not a hit: only first admissions count.
        #expect(usage(rec, "L")?.cachedTokens == 0)
        #expect(s.stats().prefixCache.queryTokens == 50 && s.stats().prefixCache.hitTokens == 0)
        #expect(s.stats().availableBlocks == 15)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    /// Echo scoring of one context, again and again (lm-evaluation-harness's pattern): later scorers take the
    /// blocks with the scores kept beside them and report every position exactly as a cold run does.
    @Test func repeatedPromptScoringHitsAndReportsTheSameScores() async {
        let context = prompt(45, document: 3)
        func scorer(_ id: String, top: Int, continuation: Int32) -> GenerationRequest {
            job(id, context + [continuation, continuation + 1], max: 0, logprobs: top, scoring: true)
        }
        var scores: [Bool: [String: [String]]] = [:]
        var cached: [String: Int] = [:]
        for cache in [false, true] {
            let (s, engine, rec) = scheduler(cache: cache)
            s.start()
            // A plain job first: its blocks carry no scores, so the first scorer still computes everything.
            let requests = [job("plain", context + [1, 2], max: 3), scorer("s1", top: 1, continuation: 1),
                            scorer("s2", top: 1, continuation: 5), scorer("s3", top: 3, continuation: 9)]
            for r in requests { #expect(await runAll(s, rec, [r])) }
            scores[cache] = Dictionary(uniqueKeysWithValues: requests.map { ($0.id, transcript(rec, $0.id)) })
            if cache { for r in requests { cached[r.id] = usage(rec, r.id)?.cachedTokens } }
            #expect(engine.violations.isEmpty)
            #expect(s.stats().availableBlocks == s.stats().totalBlocks)
            s.shutdown(grace: 0)
        }
        #expect(scores[true]! == scores[false]!)
        #expect(cached == ["plain": 0, "s1": 0, "s2": 32, "s3": 32])
        let s3 = scores[true]!["s3"]!.first!.split(separator: ",")
        #expect(s3.count == 47 && s3.dropFirst().allSatisfy { $0.hasSuffix(":3") })
    }

    @Test func withTheCacheOffNothingIsReusedOrCounted() async {
        let (s, engine, rec) = scheduler(cache: false)
        s.start()
        let p = prompt(50)
        #expect(await runAll(s, rec, [job("a", p), job("b", p)]))
        #expect(await runAll(s, rec, [job("c", p)]))
        #expect(usage(rec, "c")?.cachedTokens == 0)
        #expect(engine.tokensFed == 3 * (50 + 5))
        #expect(s.stats().prefixCache == PrefixCacheStats(enabled: false))
        s.shutdown(grace: 0)
    }
}
