// Lock waits reach the job record through the instrumented locks' process-wide sample sink.
@testable import Locks
import TestSupport
import Testing
@testable import ValetMetrics

@Suite struct LockWaitRecordingTests {
    // The sink is process-wide, shared with the lock tests, hence `exclusively`.
    @Test func lockWaitsReachTheRecorderThroughTheSink() throws {
        try exclusively {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let recorder = try Recorder(path: dir.file("valet.sqlite"))
            defer { recorder.close() }
            // Feed the sink directly (the contention path itself is tested with the lock); this checks the wiring.
            recorder.captureLockWaits(thresholdSeconds: 0, sampleEvery: 1)
            InstrumentedLocks.deliver(lock: "test_sink_delivery", waitedNanoseconds: 1_500_000, sequence: 1)
            InstrumentedLocks.removeWaitSampleSink()
            #expect(recorder.flush())
            let waits = try recorder.lockWaits(since: 0).filter { $0.lock == "test_sink_delivery" }
            #expect(waits.count == 1)
            #expect(waits.first?.waitSeconds == 0.0015)
        }
    }
}
