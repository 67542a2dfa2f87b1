// Embedding jobs in the real scheduler with the fake engine: pooled across prefill chunks, batched with
// generation, recorded with their kind, and cancelled like any job.
import Foundation
import Locks
import Testing
@testable import Scheduling
import Inference

private func embeddingScheduler(prefillChunk: Int, engine: FakeEngine = FakeEngine(blocks: 32)) -> (Scheduler, Recorder) {
    var config = SchedulerConfig(preemptAfter: 1000, agingSeconds: 0)
    config.prefillChunk = prefillChunk
    let recorder = Recorder()
    let s = Scheduler(config: config, engine: engine, decoder: LetterDecoder(), observer: recorder, clock: SystemClock())
    return (s, recorder)
}

private func embeddingJob(_ id: String, _ prompt: [Int32], _ pooling: Pooling = .mean) -> GenerationRequest {
    GenerationRequest(id: id, model: "fake", promptTokens: prompt, maxTokens: 0, embedding: pooling)
}

private func normalized(_ v: [Double]) -> [Float] {
    let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return v.map { Float($0 / n) }
}

private func vector(_ rec: Recorder, _ id: String) -> [Float]? {
    rec.events(id).compactMap { if case .embedding(let v) = $0 { v } else { nil } }.first
}

@Suite(.serialized) struct EmbeddingJobTests {
    @Test func poolsEveryPositionAcrossPrefillChunksThenFinishes() async {
        // The fake's hidden state at position p for token t is [t, p, 1, 0].
        let prompt: [Int32] = [3, 5, 7, 9, 11]
        let (s, rec) = embeddingScheduler(prefillChunk: 2)
        s.submitTelling(embeddingJob("mean", prompt), onEvent: rec.sink("mean"))
        s.submitTelling(embeddingJob("last", prompt, .last), onEvent: rec.sink("last"))
        s.submitTelling(embeddingJob("cls", prompt, .cls), onEvent: rec.sink("cls"))
        s.submitTelling(request("gen", prompt: 4, max: 3), onEvent: rec.sink("gen"))
        s.start()
        #expect(await eventually { rec.terminalOrder.count == 4 })
        let mean = normalized([7, 2, 1, 0])
        #expect(zip(vector(rec, "mean") ?? [], mean).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(vector(rec, "last") == normalized([11, 4, 1, 0]))
        #expect(vector(rec, "cls") == normalized([3, 0, 1, 0]))
        // The embedding comes once, after admission and before the end; no tokens are generated.
        for id in ["mean", "last", "cls"] {
            let events = rec.events(id)
            #expect(events.count == 3)
            guard case .admitted = events.first, case .embedding = events[1],
                  case .finished(.stop, let usage) = events.last else {
                Issue.record("\(id): unexpected events \(events)")
                continue
            }
            #expect(usage == Usage(promptTokens: 5, completionTokens: 0))
        }
        #expect(rec.tokens("gen").count == 3)
        let kinds = Dictionary(uniqueKeysWithValues: rec.finished.map { ($0.id, $0.kind) })
        #expect(kinds == ["mean": .embedding, "last": .embedding, "cls": .embedding, "gen": .completion])
        s.shutdown(grace: 0)
    }

    @Test func aCancelledEmbeddingEndsCancelledWithoutAVector() async {
        // Cancelled from inside the third prefill step, so the job is surely mid-prompt however loaded the host is.
        let box = SchedulerBox()
        let engine = FakeEngine(blocks: 32, onStep: { step in if step == 3 { box.scheduler.withLock { $0 }?.cancel(id: "e") } })
        let (s, rec) = embeddingScheduler(prefillChunk: 1, engine: engine)
        box.scheduler.withLock { $0 = s }
        s.submitTelling(embeddingJob("e", (0..<40).map { Int32($0 % 50) }), onEvent: rec.sink("e"))
        s.start()
        #expect(await eventually { rec.terminal("e") != nil })
        #expect(rec.failure("e") == .cancelled)
        #expect(vector(rec, "e") == nil)
        #expect(engine.composition.count < 40)
        #expect(rec.finished.first?.kind == .embedding)
        s.shutdown(grace: 0)
    }
}

private final class SchedulerBox: Sendable {
    let scheduler = Locked<Scheduler?>(nil)
}
