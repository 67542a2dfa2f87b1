// What operators see of the engine loop's life: a stuck step reads as a stall (liveness), a shutdown ends parked
// jobs at once, and ending the grace early ends what still runs.
import Foundation
import Synchronization
import Testing
@testable import Scheduling
import Inference

/// A gate the fake engine's step waits at, so a test holds the loop inside one step for as long as it likes.
private final class StepGate: Sendable {
    private let open = DispatchSemaphore(value: 0)
    private let entered = Atomic<Bool>(false)
    var isHeld: Bool { entered.load(ordering: .acquiring) }
    func hold() {
        entered.store(true, ordering: .releasing)
        open.wait()
    }
    func release() { open.signal() }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

@Suite struct ShutdownAndLivenessTests {
    @Test func aStepThatNeverEndsReadsAsAStallAndIdleNeverDoes() async {
        let clock = ManualClock()
        let gate = StepGate()
        let engine = FakeEngine(blocks: 64, onStep: { step in if step == 2 { gate.hold() } })
        let rec = Recorder()
        let s = Scheduler(config: SchedulerConfig(), engine: engine, decoder: LetterDecoder(), observer: rec, clock: clock)
        s.start()
        #expect(await eventually { s.stats().running == 0 })
        clock.advance(600)
        // Idle for ten minutes with nothing to do is not a stall, nor is the first job after it.
        #expect(s.stalledSeconds() == nil)
        s.submitTelling(request("a", max: 20), onEvent: rec.sink("a"))
        #expect((s.stalledSeconds() ?? 0) < 1)
        #expect(await eventually { gate.isHeld })
        clock.advance(45)
        #expect((s.stalledSeconds() ?? 0) >= 45)
        gate.release()
        #expect(await eventually { rec.finish("a") != nil })
        #expect(s.stalledSeconds() == nil)
        s.shutdown(grace: 0)
    }

    @Test func shutdownEndsParkedJobsAtOnceAndEndGraceEndsTheRest() async {
        // The running job is held inside its third step, so nothing here depends on how fast the host is.
        let gate = StepGate()
        let engine = FakeEngine(blocks: 400, onStep: { step in if step == 3 { gate.hold() } })
        let rec = Recorder()
        let s = Scheduler(config: SchedulerConfig(maxBatch: 1, preemptAfter: 1000, agingSeconds: 0), engine: engine,
                          decoder: LetterDecoder(), observer: rec, clock: SystemClock())
        s.start()
        s.submitTelling(request("running", max: 3000), onEvent: rec.sink("running"))
        #expect(await eventually { gate.isHeld })
        s.submitTelling(request("parked", max: 8), onEvent: rec.sink("parked"))
        #expect(s.stats().queued == 1)
        let done = Flag()
        let shutdown = Thread {
            s.shutdown(grace: 600)
            done.set()
        }
        shutdown.start()
        // The parked job needs no grace: it could not have run in it, and a gateway can retry it elsewhere now.
        #expect(await eventually { rec.failure("parked") == .shuttingDown })
        #expect(rec.terminal("running") == nil)
        #expect(!done.isSet)
        s.endGrace()
        gate.release()
        #expect(await eventually { done.isSet })
        #expect(rec.failure("running") == .shuttingDown)
        #expect(rec.tokens("running").count < 3000)
        #expect(s.stats().availableBlocks == 400)
    }
}
