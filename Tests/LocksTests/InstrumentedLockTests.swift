// The instrumented lock: mutual exclusion, no statistics for free acquisitions, counted waits under contention.
import TestSupport
import Testing
@testable import Locks

@Suite("Instrumented lock", .serialized)
struct InstrumentedLockTests {
    @Test func preregisteredLocksExistAtZero() {
        let names = InstrumentedLocks.snapshots().map(\.name)
        for name in ["scheduler", "streams", "kv_pool", "recorder"] {
            #expect(names.contains(name))
        }
        #expect(names == names.sorted())
    }

    @Test func uncontendedAcquisitionsRecordNothing() {
        let lock = InstrumentedLock(name: "test_uncontended", 0)
        for _ in 0..<10_000 { lock.withLock { $0 += 1 } }
        #expect(lock.withLock { $0 } == 10_000)
        let snapshot = lock.statistics.snapshot()
        #expect(snapshot.count == 0)
        #expect(snapshot.sumSeconds == 0)
        #expect(snapshot.bucketCounts.count == LockWaitStatistics.bucketBoundsSeconds.count + 1)
    }

    // The sample sink is process-wide, shared with the recorder's test, hence `exclusively`.
    @Test func contendedWaitsAreCountedAndSampled() throws {
        try exclusively {
            let samples = Locked<[LockWaitSample]>([])
            InstrumentedLocks.setWaitSampleSink(thresholdSeconds: 0, sampleEvery: 1) { sample in
                if sample.lock == "test_contended" { samples.withLock { $0.append(sample) } }
            }
            defer { InstrumentedLocks.removeWaitSampleSink() }

            let lock = InstrumentedLock(name: "test_contended", 0)
            var rounds = 0
            // Each round: this thread holds the lock while a second thread tries to take it, so that thread must wait.
            // Repeated a few times in case the scheduler runs the waiter only after the lock was released.
            while lock.statistics.snapshot().count == 0 && rounds < 20 {
                rounds += 1
                let attempting = Flag()
                var waiter: TestThread?
                try lock.withLock { value in
                    value += 1
                    waiter = try TestThread {
                        attempting.set()
                        lock.withLock { $0 += 1 }
                    }
                    while !attempting.isSet { sleepMilliseconds(1) }
                    sleepMilliseconds(20)
                }
                waiter?.join()
            }
            let snapshot = lock.statistics.snapshot()
            #expect(snapshot.count >= 1)
            #expect(snapshot.sumSeconds > 0)
            #expect(snapshot.bucketCounts.reduce(0, +) == snapshot.count)
            #expect(lock.withLock { $0 } == 2 * rounds)
            let delivered = samples.withLock { $0 }
            #expect(UInt64(delivered.count) == snapshot.count)
            #expect(delivered.allSatisfy { $0.waitSeconds > 0 && $0.time > 1_600_000_000 })
        }
    }

    @Test func bodyErrorsPropagateAndReleaseTheLock() {
        struct Boom: Error {}
        let lock = InstrumentedLock(name: "test_errors", [Int]())
        #expect(throws: Boom.self) {
            try lock.withLock { (value: inout [Int]) throws(Boom) in
                value.append(1)
                throw Boom()
            }
        }
        #expect(lock.withLock { $0 } == [1])
        #expect(lock.withLockIfAvailable { $0.count } == 1)
    }
}
