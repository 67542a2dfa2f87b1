// The scheduler end to end with a fake engine: ordering, aging, eviction, timeouts, cancellation in every state,
// shutdown, preemption with identical text, suspension for priority work, priority prefill, fifo, chunked prefill,
// and exact capacity under a randomized mix.
import Foundation
import Locks
import Testing
@testable import Scheduling
import Inference

private final class SchedulerBox: Sendable {
    let value = Locked<Scheduler?>(nil)
    var scheduler: Scheduler? { value.withLock { $0 } }
}

private func make(
    blocks: Int, engine: FakeEngine? = nil, clock: (any SchedulerClock)? = nil, eog: Set<Int32> = [],
    _ edit: (inout SchedulerConfig) -> Void = { _ in }
) -> (Scheduler, FakeEngine, Recorder) {
    let engine = engine ?? FakeEngine(blocks: blocks)
    var config = SchedulerConfig(preemptAfter: 1000, agingSeconds: 0)
    edit(&config)
    let recorder = Recorder()
    let s = Scheduler(config: config, engine: engine, decoder: LetterDecoder(endOfGenerationTokens: eog),
                      observer: recorder, clock: clock ?? SystemClock())
    return (s, engine, recorder)
}

private func doubleReleases(_ s: Scheduler) -> Int { s.core.state.withLock { $0.doubleReleases } }

@Suite(.serialized) struct SchedulerTests {
    @Test func admitsByClassThenArrivalAndRecordsEachJob() async {
        let (s, engine, rec) = make(blocks: 4)
        let jobs: [(String, Priority)] = [("l1", .low), ("n1", .normal), ("h1", .high), ("l2", .low),
                                          ("c1", .critical), ("n2", .normal)]
        for (id, p) in jobs { s.submitTelling(request(id, prompt: 8, max: 56, priority: p), onEvent: rec.sink(id)) }
        #expect(s.stats().queued == 6)
        #expect(s.stats().queuedByPriority[.low] == 2)
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 6 })
        #expect(rec.admittedOrder == ["c1", "h1", "n1", "n2", "l1", "l2"])
        for (id, _) in jobs {
            #expect(rec.tokens(id) == referenceTokens(prompt: request(id).promptTokens.prefix(8).map { $0 }, max: 56))
            #expect(rec.finish(id) == .length)
        }
        let snap = rec.finished.first { $0.id == "l2" }!
        #expect(snap.end == .finished(.length))
        #expect(snap.promptTokens == 8 && snap.completionTokens == 56 && snap.costBlocks == 4)
        #expect(snap.enqueuedAt <= snap.admittedAt! && snap.admittedAt! <= snap.firstTokenAt!)
        #expect(snap.firstTokenAt! <= snap.finishedAt)
        #expect(snap.ttftSeconds! >= snap.queueSeconds)
        let st = s.stats()
        #expect(st.counters.admitted == 6 && st.counters.completed == 6)
        #expect(st.availableBlocks == 4 && st.running == 0 && st.queued == 0)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func agingLetsAnOldLowJobGoBeforeNewerHigherOnes() async {
        let clock = ManualClock()
        let (s, _, rec) = make(blocks: 4, clock: clock) { $0.agingSeconds = 10; $0.queueTimeout = 100 }
        s.submitTelling(request("old-low", max: 56, priority: .low), onEvent: rec.sink("old-low"))
        clock.advance(25)  // two aging steps: low → high
        s.submitTelling(request("normal", max: 56, priority: .normal), onEvent: rec.sink("normal"))
        s.submitTelling(request("high", max: 56, priority: .high), onEvent: rec.sink("high"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 3 })
        #expect(rec.admittedOrder == ["old-low", "high", "normal"])
        s.shutdown(grace: 0)
    }

    @Test func smallJobsPassABlockedHeadOnlyMaxOvertakesTimes() async {
        let (s, _, rec) = make(blocks: 10) { $0.maxOvertakes = 2 }
        s.submitTelling(request("R", prompt: 8, max: 72, priority: .critical), onEvent: rec.sink("R"))  // 5 blocks
        s.submitTelling(request("H", prompt: 8, max: 152, priority: .high), onEvent: rec.sink("H"))  // all 10 blocks
        for i in 1...4 { s.submitTelling(request("s\(i)", prompt: 4, max: 4), onEvent: rec.sink("s\(i)")) }  // 1 block
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 6 })
        #expect(rec.admittedOrder == ["R", "s1", "s2", "H", "s3", "s4"])
        s.shutdown(grace: 0)
    }

    @Test func fullLotEvictsNewestLowestAndRejectsWithRetryAfter() async {
        let (s, _, rec) = make(blocks: 4) { $0.maxQueue = 2 }
        for (id, p) in [("a", Priority.low), ("b", .low), ("c", .high)] {
            s.submitTelling(request(id, priority: p), onEvent: rec.sink(id))
        }
        #expect(rec.failure("b") == .evicted(retryAfterSeconds: 1))  // delivered before submit returned
        s.submitTelling(request("d", priority: .normal), onEvent: rec.sink("d"))
        #expect(rec.failure("a") == .evicted(retryAfterSeconds: 1))
        s.submitTelling(request("e", priority: .low), onEvent: rec.sink("e"))
        #expect(rec.failure("e") == .queueFull(retryAfterSeconds: 1))
        let st = s.stats()
        #expect(st.queued == 2 && st.counters[.rejected(.evicted)] == 2 && st.counters[.rejected(.queueFull)] == 1)
        #expect(rec.finished.first { $0.id == "e" }?.end == .rejected(.queueFull))
        #expect(rec.finished.first { $0.id == "b" }?.end == .rejected(.evicted))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 5 })
        #expect(rec.finish("c") == .length && rec.finish("d") == .length)
        #expect(s.stats().availableBlocks == 4)
        s.shutdown(grace: 0)
    }

    @Test func aJobThatWaitsPastItsTimeoutGets503NotATruncatedSuccess() async {
        let clock = ManualClock()
        let (s, _, rec) = make(blocks: 4, clock: clock)
        s.submitTelling(request("short", timeout: 5), onEvent: rec.sink("short"))
        s.submitTelling(request("default"), onEvent: rec.sink("default"))
        clock.advance(6)
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.failure("short") == .queueTimeout(waitedSeconds: 6))
        #expect(rec.tokens("short").isEmpty)
        #expect(rec.finish("default") == .length)
        #expect(s.stats().counters[.failed(.queueTimeout)] == 1)
        #expect(rec.finished.first { $0.id == "short" }?.end == .failed(.queueTimeout))
        s.shutdown(grace: 0)
    }

    @Test func tooLargeIsRejectedAtOnceAndTheContextCapsMaxTokens() async {
        let (s, _, rec) = make(blocks: 4) { $0.ctxSize = 48 }
        s.submitTelling(request("huge", prompt: 8, max: 100), onEvent: rec.sink("huge"))
        #expect(rec.failure("huge") == nil)  // 8 + min(100, 40) = 48 tokens = 3 blocks: fits
        s.submitTelling(request("long-prompt", prompt: 60, max: 4), onEvent: rec.sink("long-prompt"))
        #expect(rec.failure("long-prompt") == .tooLarge(costBlocks: 4, capacityBlocks: 3))
        let (small, _, rec2) = make(blocks: 2)
        small.submitTelling(request("big", prompt: 8, max: 100), onEvent: rec2.sink("big"))
        #expect(rec2.failure("big") == .tooLarge(costBlocks: 7, capacityBlocks: 2))
        #expect(rec2.finished.first?.end == .rejected(.tooLarge))
        #expect(small.stats().counters[.rejected(.tooLarge)] == 1)
        s.submitTelling(GenerationRequest(id: "empty", model: "m", promptTokens: [], maxTokens: 3), onEvent: rec.sink("empty"))
        #expect(rec.failure("empty") != nil)
        s.start()
        #expect(await eventually { rec.terminal("huge") != nil })
        #expect(rec.tokens("huge").count == 40)
        #expect(rec.finish("huge") == .length)
        s.shutdown(grace: 0)
        small.shutdown(grace: 0)
    }

    @Test func cancelWhileParked() async {
        let (s, _, rec) = make(blocks: 4)
        let h = s.submitTelling(request("p"), onEvent: rec.sink("p")).handle
        s.submitTelling(request("q"), onEvent: rec.sink("q"))
        h?.cancel()
        #expect(rec.failure("p") == .cancelled)
        h?.cancel()
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.events("p").count == 1)
        #expect(s.stats().counters[.failed(.cancelled)] == 1)
        #expect(rec.finished.first { $0.id == "p" }?.end == .failed(.cancelled))
        s.shutdown(grace: 0)
    }

    @Test func cancelWhilePrefillingReleasesItsBlocks() async {
        let box = SchedulerBox()
        let engine = FakeEngine(blocks: 40, onStep: { step in
            if step == 3 { box.scheduler?.cancel(id: "long") }
        })
        let (s, _, rec) = make(blocks: 40, engine: engine) { $0.prefillChunk = 16 }
        box.value.withLock { $0 = s }
        s.submitTelling(request("long", prompt: 200, max: 10), onEvent: rec.sink("long"))
        s.start()
        #expect(await eventually { rec.terminal("long") != nil })
        #expect(rec.failure("long") == .cancelled)
        #expect(rec.tokens("long").isEmpty)
        #expect(rec.events("long").count == 2)  // admitted, failed
        #expect(engine.composition.count < 13)  // stopped well before the 13 prefill chunks
        #expect(s.stats().availableBlocks == 40)
        #expect(rec.finished.first?.prefillSeconds == nil)
        s.shutdown(grace: 0)
        box.value.withLock { $0 = nil }
    }

    @Test func cancelWhileDecodingStopsBeforeTheNextStep() async {
        let (s, _, rec) = make(blocks: 40)
        let count = Locked(0)
        let sink = rec.sink("d")
        s.submitTelling(request("d", max: 200), onEvent: { [s] e in
            sink(e)
            if case .token = e, count.withLock({ $0 += 1; return $0 }) == 3 { s.cancel(id: "d") }
        })
        s.start()
        #expect(await eventually { rec.terminal("d") != nil })
        #expect(rec.failure("d") == .cancelled)
        #expect(rec.tokens("d").count == 3)
        #expect(s.stats().availableBlocks == 40)
        #expect(s.stats().counters[.failed(.cancelled)] == 1)
        s.shutdown(grace: 0)
    }

    @Test func shutdownEndsRunningAndParkedJobsAndReportsLiveStats() async {
        let engine = FakeEngine(blocks: 400, stepDelay: 0.001)
        let (s, _, rec) = make(blocks: 400, engine: engine)
        let ids = ["r1", "r2", "r3", "w1", "w2"]
        s.start()
        for id in ids { s.submitTelling(request(id, max: 2000), onEvent: rec.sink(id)) }  // 126 blocks each
        #expect(await eventually { ["r1", "r2", "r3"].allSatisfy { !rec.tokens($0).isEmpty } })
        let st = s.stats()
        #expect(st.running == 3 && st.queued == 2 && st.availableBlocks == 400 - 3 * 126)
        #expect(st.queuedByPriority[.normal] == 2 && st.batchSize == 3)
        s.shutdown(grace: 0)
        for id in ids { #expect(rec.failure(id) == .shuttingDown) }
        #expect(s.stats().counters[.failed(.shutdown)] == 5)
        #expect(s.stats().availableBlocks == 400)
        #expect(rec.finished.allSatisfy { $0.end == .failed(.shutdown) })
        s.submitTelling(request("late"), onEvent: rec.sink("late"))
        #expect(rec.failure("late") == .shuttingDown)
        #expect(s.stats().counters[.rejected(.shuttingDown)] == 1)
    }

    @Test func shutdownGraceLetsRunningJobsFinish() async {
        let (s, _, rec) = make(blocks: 40)
        s.start()
        for id in ["a", "b"] { s.submitTelling(request(id, max: 30), onEvent: rec.sink(id)) }
        #expect(await eventually { rec.admittedOrder.count == 2 })
        s.shutdown(grace: 120)
        #expect(rec.finish("a") == .length && rec.finish("b") == .length)
        #expect(rec.tokens("a").count == 30)
    }

    @Test func preemptedJobResumesWithIdenticalText() async {
        let clock = ManualClock()
        let engine = FakeEngine(blocks: 15, stepDelay: 0.002)
        let (s, _, rec) = make(blocks: 15, engine: engine, clock: clock) { $0.preemptAfter = 2 }
        let low = request("L", prompt: 10, max: 200, priority: .low)  // 14 blocks
        let high = request("H", prompt: 10, max: 20, priority: .high, seedTokens: 7)  // 2 blocks
        s.start()
        s.submitTelling(low, onEvent: rec.sink("L"))
        #expect(await eventually { rec.tokens("L").count >= 5 })
        s.submitTelling(high, onEvent: rec.sink("H"))
        #expect(rec.admittedOrder == ["L"])
        clock.advance(3)
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.terminalOrder == ["H", "L"])
        #expect(rec.preempted == ["L"])
        #expect(rec.tokens("L") == referenceTokens(prompt: low.promptTokens, max: 200))
        #expect(rec.tokens("H") == referenceTokens(prompt: high.promptTokens, max: 20))
        #expect(rec.events("L").filter { if case .admitted = $0 { true } else { false } }.count == 1)
        #expect(rec.finish("L") == .length)
        #expect(rec.finished.first { $0.id == "L" }?.preemptions == 1)
        #expect(s.stats().counters.preempted == 1)
        #expect(s.stats().availableBlocks == 15)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    /// A scheduler whose fake engine runs `hook` at the start of every step (to submit or cancel mid-run).
    private func hooked(blocks: Int, clock: any SchedulerClock = SystemClock(),
                        _ edit: (inout SchedulerConfig) -> Void,
                        hook: @escaping @Sendable (Int, Scheduler, Recorder) -> Void) -> (Scheduler, FakeEngine, Recorder) {
        let box = SchedulerBox()
        let rec = Recorder()
        let engine = FakeEngine(blocks: blocks, onStep: { step in
            if let s = box.scheduler { hook(step, s, rec) }
        })
        var config = SchedulerConfig(agingSeconds: 0)
        edit(&config)
        let s = Scheduler(config: config, engine: engine, decoder: LetterDecoder(), observer: rec, clock: clock)
        box.value.withLock { $0 = s }
        return (s, engine, rec)
    }

    @Test func aHighJobTakesTheNewestNormalsRowAtOnceAndNothingIsRecomputed() async {
        let n1 = request("N1", prompt: 10, max: 40), n2 = request("N2", prompt: 12, max: 40, seedTokens: 3)
        let high = request("H", prompt: 9, max: 5, priority: .high, seedTokens: 7)
        // The clock never moves, so the 2 s preemption can never be what lets H in.
        let (s, engine, rec) = hooked(blocks: 40, clock: ManualClock(), { $0.maxBatch = 2 }) { step, s, rec in
            if step == 4 { s.submitTelling(high, onEvent: rec.sink("H")) }
        }
        s.submitTelling(n1, onEvent: rec.sink("N1"))
        s.submitTelling(n2, onEvent: rec.sink("N2"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 3 })
        #expect(rec.terminalOrder.first == "H")
        #expect(rec.suspended == ["N2"])
        #expect(rec.preempted.isEmpty)
        #expect(s.stats().counters.suspended == 1 && s.stats().counters.preempted == 0)
        let steps = engine.composition
        #expect(steps.count > 4 && steps[4] == [9, 1])  // the step right after H arrived: H's whole prompt, N1 decodes
        #expect(steps.allSatisfy { $0.count <= 2 })
        // N2 paused while H ran: no N2 token between H's first and last
        let order = rec.tokenOrder
        if let a = order.firstIndex(of: "H"), let b = order.lastIndex(of: "H") {
            #expect(!order[a...b].contains("N2"))
        }
        // Nothing recomputed: every fed token is a prompt token or a generated one fed back once.
        let fed: Int = steps.reduce(0) { $0 + $1.reduce(0, +) }
        let oncePerToken: Int = 10 + 39 + 12 + 39 + 9 + 4
        #expect(fed == oncePerToken)
        for r in [n1, n2, high] {
            #expect(rec.tokens(r.id) == referenceTokens(prompt: r.promptTokens, max: r.maxTokens))
        }
        #expect(rec.events("N2").filter { if case .admitted = $0 { true } else { false } }.count == 1)
        let st = s.stats()
        #expect(st.availableBlocks == 40 && st.running == 0 && st.queued == 0)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func aSuspendedJobThatIsCancelledReleasesItsBlocksOnce() async {
        let high = request("H", prompt: 9, max: 6, priority: .high, seedTokens: 7)
        let (s, engine, rec) = hooked(blocks: 20, { $0.maxBatch = 1 }) { step, s, rec in
            if step == 3 { s.submitTelling(high, onEvent: rec.sink("H")) }
            if step == 5 { s.cancel(id: "N") }
        }
        let normal = request("N", prompt: 10, max: 100)
        s.submitTelling(normal, onEvent: rec.sink("N"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.suspended == ["N"])
        #expect(rec.failure("N") == .cancelled)
        #expect(rec.terminalOrder == ["N", "H"])  // cancelled while suspended, H still running
        #expect(rec.tokens("N").count == 3)
        #expect(rec.tokens("H") == referenceTokens(prompt: high.promptTokens, max: 6))
        let st = s.stats()
        #expect(st.availableBlocks == 20 && st.running == 0 && st.queued == 0)
        #expect(st.counters[.failed(.cancelled)] == 1)
        #expect(doubleReleases(s) == 0)
        #expect(engine.violations.isEmpty)
        s.shutdown(grace: 0)
    }

    @Test func aHighPromptIsPrefilledFirstAndLowerPromptsWaitForIt() async {
        let high = request("H", prompt: 20, max: 3, priority: .high, seedTokens: 7)
        let (s, engine, rec) = hooked(blocks: 40, { $0.prefillChunk = 32; $0.maxBatch = 4 }) { step, s, rec in
            if step == 2 { s.submitTelling(high, onEvent: rec.sink("H")) }
        }
        let long = request("N", prompt: 200, max: 4)
        s.submitTelling(long, onEvent: rec.sink("N"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 2 })
        let steps = engine.composition
        #expect(Array(steps.prefix(4)) == [[32], [32], [20], [1, 32]])
        #expect(rec.tokenOrder.first == "H")
        #expect(rec.terminalOrder == ["H", "N"])
        #expect(rec.suspended.isEmpty)
        #expect(rec.tokens("N") == referenceTokens(prompt: long.promptTokens, max: 4))
        #expect(rec.tokens("H") == referenceTokens(prompt: high.promptTokens, max: 3))
        s.shutdown(grace: 0)
    }

    @Test func fifoNeitherSuspendsNorReordersPrefill() async {
        let high = request("H", prompt: 9, max: 3, priority: .high, seedTokens: 7)
        let (s, engine, rec) = hooked(blocks: 40, { $0.kind = .fifo; $0.maxBatch = 1 }) { step, s, rec in
            if step == 2 { s.submitTelling(high, onEvent: rec.sink("H")) }
        }
        s.submitTelling(request("N", prompt: 10, max: 8), onEvent: rec.sink("N"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 2 })
        #expect(rec.terminalOrder == ["N", "H"])
        #expect(rec.suspended.isEmpty && s.stats().counters.suspended == 0)
        #expect(engine.composition.allSatisfy { $0.count == 1 })
        s.shutdown(grace: 0)
    }

    @Test func fifoAdmitsInArrivalOrderAndNeverEvicts() async {
        let (s, _, rec) = make(blocks: 4) { $0.kind = .fifo; $0.maxQueue = 4 }
        let jobs: [(String, Priority)] = [("l1", .low), ("h1", .high), ("n1", .normal), ("c1", .critical)]
        for (id, p) in jobs { s.submitTelling(request(id, max: 56, priority: p), onEvent: rec.sink(id)) }
        s.submitTelling(request("c2", priority: .critical), onEvent: rec.sink("c2"))
        #expect(rec.failure("c2") == .queueFull(retryAfterSeconds: 1))
        #expect(s.stats().schedulerType == "fifo")
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 5 })
        #expect(rec.admittedOrder == ["l1", "h1", "n1", "c1"])
        s.shutdown(grace: 0)
    }

    @Test func longPromptsArePrefilledInChunksWhileOthersKeepDecoding() async {
        let engine = FakeEngine(blocks: 100, stepDelay: 0.002)
        let (s, _, rec) = make(blocks: 100, engine: engine) { $0.prefillChunk = 16; $0.maxBatch = 4 }
        s.start()
        let a = request("A", prompt: 4, max: 60), b = request("B", prompt: 100, max: 5, seedTokens: 3)
        s.submitTelling(a, onEvent: rec.sink("A"))
        #expect(await eventually { rec.tokens("A").count >= 2 })
        s.submitTelling(b, onEvent: rec.sink("B"))
        #expect(await eventually { rec.terminalOrder.count == 2 })
        let steps = engine.composition
        #expect(steps.allSatisfy { $0.filter { $0 > 1 }.reduce(0, +) <= 16 })
        #expect(steps.contains { $0.contains(1) && $0.contains(16) })
        #expect(rec.tokens("A") == referenceTokens(prompt: a.promptTokens, max: 60))
        #expect(rec.tokens("B") == referenceTokens(prompt: b.promptTokens, max: 5))
        s.shutdown(grace: 0)
    }

    @Test func logprobsPromptScoringAndStopStrings() async {
        let (s, _, rec) = make(blocks: 40, eog: [])
        var scoring = request("score", prompt: 6, max: 0)
        scoring.promptLogprobs = true
        scoring.logprobs = 3
        var lp = request("lp", prompt: 6, max: 3)
        lp.logprobs = 2
        let plain = request("stop", prompt: 6, max: 40)
        let full = referenceTokens(prompt: plain.promptTokens, max: 40)
        let letters = String(full.map { Character(Unicode.Scalar(UInt8(ascii: "a") + UInt8(Int($0) % 26))) })
        let start = letters.index(letters.startIndex, offsetBy: 10)
        let stopString = String(letters[start..<letters.index(start, offsetBy: 2)])
        let cut = letters.range(of: stopString)!.lowerBound
        var stopped = plain
        stopped.stop = [stopString]
        s.submitTelling(scoring, onEvent: rec.sink("score"))
        s.submitTelling(lp, onEvent: rec.sink("lp"))
        s.submitTelling(stopped, onEvent: rec.sink("stop"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 3 })

        let scores = rec.events("score").compactMap { if case .promptLogprobs(let p) = $0 { p } else { nil } }
        #expect(scores.count == 1)
        #expect(scores.first?.count == 6 && scores.first?.first! == nil)
        #expect(scores.first?.dropFirst().allSatisfy { ($0?.token.logprob ?? 1) <= 0 } == true)
        // Three alternatives per scored position, best first, none likelier than certain, the best at least as
        // likely as the prompt's own token.
        for entry in scores.first?.dropFirst() ?? [] {
            guard let entry else { Issue.record("a scored position has no entry"); continue }
            #expect(entry.top.count == 3)
            #expect(zip(entry.top, entry.top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
            #expect(entry.top.first!.logprob >= entry.token.logprob && entry.top.first!.logprob <= 0)
        }
        guard case .finished(.length, let usage) = rec.terminal("score") else {
            Issue.record("scoring should finish with length")
            return
        }
        #expect(usage == Usage(promptTokens: 6, completionTokens: 0))

        let tokens = rec.events("lp").compactMap { if case .token(let t) = $0 { t } else { nil } }
        #expect(tokens.count == 3)
        #expect(tokens.allSatisfy { $0.logprob != nil && $0.topLogprobs.count == 2 && $0.topLogprobs[0].token == $0.token })

        #expect(rec.text("stop") == String(letters[..<cut]))
        #expect(rec.finish("stop") == .stop)
        #expect(rec.finished.first { $0.id == "stop" }?.matchedStop == stopString)
        s.shutdown(grace: 0)
    }

    @Test func capacityAccountingStaysExactUnderARandomizedMix() async throws {
        let eog: Set<Int32> = [63]
        let engine = FakeEngine(blocks: 20)
        let (s, _, rec) = make(blocks: 20, engine: engine, eog: eog) {
            $0.maxBatch = 6
            $0.prefillChunk = 24
            $0.maxQueue = 40
            $0.preemptAfter = 0.001
            $0.agingSeconds = 0.05
            $0.maxOvertakes = 3
            $0.queueTimeout = 5
        }
        s.start()
        var gen = Xoshiro256(seed: 2026)
        func rnd(_ n: Int) -> Int { Int(gen.next() % UInt64(n)) }
        let total = 2500
        var requests: [String: GenerationRequest] = [:]
        var handles: [JobHandle] = []
        for i in 0..<total {
            let id = "j\(i)"
            var r = request(id, prompt: 1 + rnd(40), max: rnd(41), priority: Priority(rawValue: rnd(4))!,
                            seedTokens: Int32(rnd(13)))
            switch rnd(20) {
            case 0: r.maxTokens = 2000  // too large
            case 1, 2: r.queueTimeout = Double(rnd(10)) / 1000
            case 3: r.stop = ["ab", "x"]
            default: break
            }
            requests[id] = r
            let cancelAt = rnd(10) == 0 ? 1 + rnd(5) : 0
            let seen = Locked(0)
            let sink = rec.sink(id)
            let h = s.submitTelling(r, onEvent: { [s] e in
                sink(e)
                if cancelAt > 0, case .token = e, seen.withLock({ $0 += 1; return $0 }) == cancelAt { s.cancel(id: id) }
            })
            if let h = h.handle { handles.append(h) }
            if rnd(10) == 0, !handles.isEmpty { handles[rnd(handles.count)].cancel() }
            if i % 8 == 0 { try await Task.sleep(for: .microseconds(300)) }
        }
        let allEnded = await eventually(20) { rec.terminalOrder.count == total }
        #expect(allEnded)
        let st = s.stats()
        if !allEnded {
            let ended = Set(rec.terminalOrder)
            for id in requests.keys.sorted() where !ended.contains(id) {
                print("stuck \(id): \(requests[id]!.priority) prompt \(requests[id]!.promptTokens.count) max \(requests[id]!.maxTokens) events \(rec.events(id).count) \(st)")
            }
        }
        #expect(st.availableBlocks == 20 && st.running == 0 && st.queued == 0)
        #expect(doubleReleases(s) == 0)
        #expect(engine.violations.isEmpty)
        // Prompts repeat across the 13 seeds, so the mix ran through cache hits and evictions too.
        #expect(st.prefixCache.hitTokens > 0 && st.prefixCache.evictions > 0)
        #expect(rec.afterTerminal.isEmpty)
        #expect(Set(rec.terminalOrder).count == total)
        #expect(rec.finished.count == total && Set(rec.finished.map(\.id)).count == total)
        let c = st.counters
        #expect(c.ends.values.reduce(0, +) == total)
        #expect(c[.failed(.engineError)] == 0)
        // every end state occurred
        #expect(c.completed > 0 && c[.failed(.cancelled)] > 0 && c[.failed(.queueTimeout)] > 0)
        #expect(c[.rejected(.tooLarge)] > 0)
        #expect(c[.rejected(.queueFull)] + c[.rejected(.evicted)] > 0)
        // Whether a high arrival finds rows or blocks short (suspension or preemption) is up to the host's timing;
        // each path has a deterministic test of its own, so the mix only has to have made room for priority work.
        #expect(c.preempted + c.suspended > 0)
        // batching, chunking and preemption never changed anyone's tokens
        var checked = 0
        for (id, r) in requests {
            let got = rec.tokens(id)
            let ref = referenceTokens(prompt: r.promptTokens, max: r.maxTokens, eog: eog)
            #expect(Array(ref.prefix(got.count)) == got, "\(id)")
            if rec.finish(id) != nil && r.stop.isEmpty {
                #expect(got == ref, "\(id)")
                checked += 1
            }
        }
        #expect(checked > 20)
        s.shutdown(grace: 0)
    }
}
