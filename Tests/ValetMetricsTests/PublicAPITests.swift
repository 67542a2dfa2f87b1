// Uses ValetMetrics exactly as the Inference and Service modules will: a plain import, public API only.
import Locks
import Testing
import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

private struct LotState: ~Copyable {
    var queued: [String] = []
    var usedBlocks = 0
}

@Suite("Public API as wired")
struct PublicAPITests {
    @Test func schedulerStyleLockUse() throws {
        let lot = InstrumentedLock(name: "scheduler", LotState())
        lot.withLock { $0.queued.append("chatcmpl-1") }
        let (count, used) = lot.withLock { state in
            state.usedBlocks += 4
            return (state.queued.count, state.usedBlocks)
        }
        #expect(count == 1 && used == 4)
        struct Full: Error {}
        #expect(throws: Full.self) {
            try lot.withLock { (state: inout LotState) throws(Full) in
                if state.usedBlocks >= 4 { throw Full() }
            }
        }
        #expect(lot.name == "scheduler")
        #expect(InstrumentedLocks.snapshots().contains { $0.name == "scheduler" })
    }

    @Test func serviceStyleWiring() throws {
        let dir = "/tmp/valet-public-api-\(MetricsClock.monotonicNanoseconds())"
        let recorder = try Recorder(
            path: dir + "/valet.sqlite",
            options: RecorderOptions(flushInterval: 0.25, retention: RecorderOptions.parseDuration("7d")))
        defer {
            recorder.close()
            _ = system("rm -rf '\(dir)'")
        }
        // (The service also calls `recorder.captureLockWaits()`; not here, the sink is process-wide and the lock
        // tests own it.)
        let registry = ValetMetricsRegistry(
            version: "0.1.0", revision: "deadbeef", model: "SmolLM2-135M-Instruct", quantization: "Q4_1",
            contextLength: 8_192, httpHandlers: ["chat_completions", "completions", "models", "metrics", "v1_metrics",
                                                 "jobs", "health"])
        registry.attach(recorder: recorder)
        let sampler = QueueSampler(recorder: recorder, interval: 1, minimumSpacing: 0.1)
        try sampler.start()
        defer { sampler.stop() }

        sampler.observe(queued: 1, running: 0, usedBlocks: 0, totalBlocks: 64)
        registry.setSchedulerState(running: 1, waiting: WaitingCounts(), capacityBlocks: 64, usedBlocks: 8, batchSize: 1)
        registry.tokenEmitted(interTokenSeconds: 0.01)
        let now = MetricsClock.unixSeconds()
        let job = JobRecord(
            id: "chatcmpl-public", model: "SmolLM2-135M-Instruct", priority: "normal", status: .completed,
            finishReason: "stop", promptTokens: 12, completionTokens: 2, costBlocks: 1, enqueuedAt: now - 0.2,
            admittedAt: now - 0.19, firstTokenAt: now - 0.1, finishedAt: now)
        recorder.record(job)
        registry.jobFinished(job)
        registry.httpRequest(handler: "chat_completions", method: "POST", status: 200, durationSeconds: 0.2)

        #expect(recorder.flush())
        #expect(try recorder.job(id: "chatcmpl-public") == job)
        let report = V1MetricsReport(
            activeWorkers: 0, waiting: WaitingCounts(), availableCapacity: 64, totalCapacity: 64,
            batchSize: 0, totals: try recorder.totals(), recorderDroppedTotal: recorder.droppedCount,
            windowSeconds: V1MetricsReport.window(fromQuery: nil),
            history: try recorder.queueHistory(since: now - 300))
        #expect(report.totals?.jobs == 1)
        #expect(report.history.first?.queued == 1)
        let text = registry.render()
        #expect(text.contains("valet_request_success_total{finished_reason=\"stop\"} 1"))
        #expect(ValetMetricsRegistry.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }
}
