// Every way a job can end, driven through one real scheduler (fake engine) wired as `valet serve` wires it, and
// counted in all four views: the live counters, /metrics, /v1/metrics and the `jobs` table. They must agree, and so
// must their prefix-cache figures.
import Foundation
import Inference
import Locks
import Testing
import ValetMetrics
@testable import Scheduling
@testable import valet

/// The prompt's first token says what the fake does: 1 stops at once (EOG), 2 and 5 never stop, 6 makes the engine
/// fail. While `holdDecode` says so, decode steps wait: the job meant to be cut by shutdown cannot finish first,
/// however long a busy host keeps the test from calling shutdown.
private final class ScriptedEngine: StepEngine, Sendable {
    let vocabSize = 8
    let blockSize = 16
    let totalBlocks = 8
    let contextLength = 4096
    static let eog: Int32 = 7
    let holdDecode = Locked<(@Sendable () -> Bool)?>(nil)

    // Its logits read no KV, so seeded rows need no copying.
    func copyRows(from source: Int32, to destination: Int32, tokens: Int) {}

    func step(_ batch: [StepSequence], emit: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        if batch.contains(where: { $0.position == 0 && $0.tokens.first == 6 }) {
            throw EngineError("scripted failure")
        }
        if batch.contains(where: { $0.position > 0 }), let hold = holdDecode.withLock({ $0 }) {
            while hold() { usleep(1_000) }
        }
        for (i, s) in batch.enumerated() where s.logits != .none {
            var row = [Float](repeating: 0, count: vocabSize)
            // The history's first token is the script; a decode step only sees its last token, so the script is
            // carried in the token fed back: 1 → EOG, anything else → 3 (which never ends).
            let script = s.position == 0 ? s.tokens.first! : s.tokens.last!
            row[Int(script == 1 ? Self.eog : 3)] = 10
            row.withUnsafeMutableBufferPointer { emit(i, s.tokens.count - 1, $0) }
        }
    }
}

private struct Letters: TokenDecoding {
    var endOfGenerationTokens: Set<Int32> { [ScriptedEngine.eog] }
    func bytes(of token: Int32) -> [UInt8] { [UInt8(ascii: "a") + UInt8(token)] }
}

/// Events per job id.
private final class Events: Sendable {
    private let seen = Locked<[String: [JobEvent]]>([:])
    func sink(_ id: String) -> @Sendable (JobEvent) -> Void { { e in self.seen.withLock { $0[id, default: []].append(e) } } }
    func tokens(_ id: String) -> Int {
        seen.withLock { ($0[id] ?? []).filter { if case .token = $0 { true } else { false } }.count }
    }
    func ended(_ id: String) -> Bool {
        seen.withLock { ($0[id] ?? []).contains { if case .finished = $0 { true } else if case .failed = $0 { true } else { false } } }
    }
}

/// `name{labels} value` lines of a Prometheus exposition, keyed by the line's name and labels as written.
private func samples(_ text: String) -> [String: Double] {
    var out: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        out[String(line[..<space])] = value
    }
    return out
}

private func request(_ id: String, _ prompt: [Int32], max: Int = 2, priority: Priority = .normal,
                     timeout: Double? = nil) -> GenerationRequest {
    var sampling = SamplingParameters()
    sampling.temperature = 0
    return GenerationRequest(id: id, model: "m", promptTokens: prompt, maxTokens: max, sampling: sampling,
                             priority: priority, queueTimeout: timeout)
}

private func waitFor(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<5_000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

@Suite(.serialized) struct EndStateViewsTests {
    @Test func everyEndStateCountsOnceInAllFourViews() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-ends-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = ServeConfig()
        config.db = dir.appendingPathComponent("valet.sqlite").path
        let telemetry = try Telemetry(config: config, httpHandlers: [])
        defer { telemetry.flush() }
        var schedulerConfig = SchedulerConfig(maxBatch: 1, maxQueue: 2, preemptAfter: 1000, agingSeconds: 0)
        schedulerConfig.kind = .parkingLot
        let engine = ScriptedEngine()
        let s = Scheduler(config: schedulerConfig, engine: engine, decoder: Letters(), observer: telemetry.observer)
        telemetry.attach(stats: { s.stats() })
        let events = Events()
        var expected: [String: JobEnd] = [:]
        func submit(_ r: GenerationRequest, _ end: JobEnd) -> Submission {
            expected[r.id] = end
            return s.submit(r, onEvent: events.sink(r.id))
        }

        // Before the loop runs, so the lot fills: A and B park, C evicts the low B, D finds it full.
        _ = submit(request("A", [2]), .finished(.length))
        _ = submit(request("B", [2], priority: .low), .rejected(.evicted))
        let c = submit(request("C", [2]), .failed(.cancelled))
        #expect(submit(request("D", [2], priority: .low), .rejected(.queueFull)).rejection != nil)
        c.handle?.cancel()
        _ = submit(request("E", [2], timeout: 0), .failed(.queueTimeout))
        s.start()
        #expect(await waitFor { events.ended("A") && events.ended("E") })
        _ = submit(request("F", [1], max: 4), .finished(.stop))
        #expect(submit(request("G", [2], max: 1000), .rejected(.tooLarge)).rejection != nil)
        #expect(submit(request("H", []), .rejected(.invalid)).rejection != nil)
        _ = submit(request("I", [6]), .failed(.engineError))
        #expect(await waitFor { events.ended("F") && events.ended("I") })
        engine.holdDecode.withLock { $0 = { !s.core.state.withLock { $0.shuttingDown } } }
        _ = submit(request("J", [5], max: 120), .failed(.shutdown))
        #expect(await waitFor { events.tokens("J") > 0 })
        s.shutdown(grace: 0)
        #expect(submit(request("K", [2]), .rejected(.shuttingDown)).rejection == .shuttingDown)
        #expect(Set(expected.values) == Set(JobEnd.allCases), "the test must drive every end state")

        // 1. Live counters.
        let live = s.stats().counters
        for end in JobEnd.allCases { #expect(live[end] == 1, "live \(end)") }

        // 2. /metrics: one family per kind of end, labelled by the end's reason.
        let exposition = samples(telemetry.registry.render())
        for end in JobEnd.allCases {
            let key: String
            switch end {
            case .finished(let r): key = "valet_request_success_total{finished_reason=\"\(r.rawValue)\"}"
            case .rejected: key = "valet_admission_rejections_total{reason=\"\(end.reason)\"}"
            case .failed: key = "valet_request_failures_total{reason=\"\(end.reason)\"}"
            }
            #expect(exposition[key] == 1, "\(key)")
        }

        // 3. /v1/metrics.
        let report = try #require(try telemetry.v1Report(window: 60))
        let rejections = JobEnd.Rejection.allCases.count
        #expect(report.counters["completed"] == 2)
        #expect(report.counters["rejected"] == rejections)
        #expect(report.rejectedByReason.values.reduce(0, +) == rejections)
        for r in JobEnd.Rejection.allCases { #expect(report.rejectedByReason[r.rawValue] == 1, "\(r)") }
        for name in ["evicted", "timed_out", "cancelled", "failed", "shut_down"] {
            #expect(report.counters[name] == 1, "\(name)")
        }

        // 4. The jobs table: each job's row says how it ended, and the totals add up the same way.
        let recorder = try #require(telemetry.recorder)
        #expect(recorder.flush())
        for (id, end) in expected {
            let row = try #require(try recorder.job(id: id), "no row for \(id)")
            #expect(row.status == SchedulerMetricsObserver.status(end), "\(id)")
            #expect(row.finishReason == end.finishReason?.rawValue, "\(id)")
        }
        let totals = try recorder.totals()
        #expect(totals.jobs == JobEnd.allCases.count)
        let rejectedRows = JobRecord.Status.allCases.filter(\.isRejection).reduce(0) { $0 + (totals.byStatus[$1.rawValue] ?? 0) }
        #expect(rejectedRows == report.counters["rejected"])
        #expect(totals.byFinishReason == ["stop": 1, "length": 1])
    }

    @Test func prefixCacheFiguresAgreeInAllFourViews() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = ServeConfig()
        config.db = dir.appendingPathComponent("valet.sqlite").path
        let telemetry = try Telemetry(config: config, httpHandlers: [])
        defer { telemetry.flush() }
        let s = Scheduler(config: SchedulerConfig(maxBatch: 2, preemptAfter: 1000, agingSeconds: 0, modelIdentity: "m"),
                          engine: ScriptedEngine(), decoder: Letters(), observer: telemetry.observer)
        telemetry.attach(stats: { s.stats() })
        s.start()
        let events = Events()
        // 40 tokens: two full blocks can be shared, and the third block's rows up to the last token are seeded from
        // p1's tail (32 + 7 = 39 cached tokens). The third job has another prompt and finds nothing.
        let shared = [Int32](repeating: 2, count: 40), other = [Int32](repeating: 3, count: 20)
        let ids = ["p1", "p2", "q1"]
        for (id, prompt) in zip(ids, [shared, shared, other]) {
            _ = s.submit(request(id, prompt), onEvent: events.sink(id))
            #expect(await waitFor { events.ended(id) })
        }
        let live = s.stats()
        #expect(live.prefixCache.queryTokens == 100 && live.prefixCache.hitTokens == 39)
        // The shared prompt's two full blocks and its tail (p2's equal tail is freed), the other's one and its tail.
        #expect(live.prefixCache.cachedBlocks == 2 + 1 + 1 + 1)
        #expect(live.availableBlocks == live.totalBlocks)

        let exposition = samples(telemetry.registry.render())
        #expect(exposition["valet_prefix_cache_queries_total"] == 100)
        #expect(exposition["valet_prefix_cache_hits_total"] == 39)
        #expect(exposition["valet_prefix_cache_blocks"] == 5)
        #expect(exposition["valet_prefix_cache_evictions_total"] == Double(live.prefixCache.evictions))

        let report = try #require(try telemetry.v1Report(window: 60))
        #expect(report.prefixCache == PrefixCacheReport(enabled: true, cachedBlocks: 5, queryTokens: 100, hitTokens: 39,
                                                        evictions: live.prefixCache.evictions))
        #expect(report.cachedCapacity == 5 && report.availableCapacity == report.totalCapacity)

        let recorder = try #require(telemetry.recorder)
        #expect(recorder.flush())
        let rows = try ids.map { try #require(try recorder.job(id: $0)) }
        #expect(rows.map(\.cachedTokens) == [0, 39, 0])
        #expect(rows.map(\.costBlocks) == [3, 1, 2])
        #expect(try recorder.totals().cachedTokens == 39)
        s.shutdown(grace: 0)
    }
}
