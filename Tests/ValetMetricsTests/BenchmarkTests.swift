// Runs the metrics benchmarks small (checking they work) and prints the figures; VALET_METRICS_BENCH=1 runs
// them at full size (a million jobs). No timing assertions: speed belongs to `make bench`.
import Locks
import Testing
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

@Suite("Metrics benchmarks", .serialized)
struct BenchmarkTests {
    private var full: Bool { getenv("VALET_METRICS_BENCH") != nil }

    @Test func lockOverhead() {
        let result = MetricsBenchmarks.lockOverhead(iterations: full ? 5_000_000 : 100_000, rounds: full ? 5 : 1)
        #expect(result.bareNanoseconds > 0 && result.instrumentedNanoseconds > 0)
        print("bench:", result)
    }

    @Test func recorderThroughputAndScrapeCost() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(path: dir.file("bench.sqlite"))
        defer { recorder.close() }
        let jobs = full ? 1_000_000 : 20_000
        let throughput = MetricsBenchmarks.recorderThroughput(recorder: recorder, jobs: jobs)
        print("bench:", throughput)
        #expect(try recorder.totals().jobs == jobs)
        #expect(try recorder.rowCount(table: "jobs") == jobs)

        let registry = ValetMetricsRegistry(version: "bench", revision: "bench", model: "m", quantization: "q",
                                            httpHandlers: ["chat_completions", "completions", "metrics"])
        registry.attach(recorder: recorder)
        let scrape = MetricsBenchmarks.scrapeCost(registry: registry, scrapes: full ? 500 : 50)
        print("bench:", scrape, "with \(jobs) jobs in SQLite")
        #expect(scrape.bytes > 10_000)

        var start = MetricsClock.monotonicNanoseconds()
        for _ in 0..<100 { _ = try recorder.totals() }
        let totalsMicroseconds = Double(MetricsClock.monotonicNanoseconds() - start) / 100 / 1e3
        start = MetricsClock.monotonicNanoseconds()
        for i in 0..<1_000 { _ = try recorder.job(id: "bench-\(i * (jobs / 1_000))") }
        let lookupMicroseconds = Double(MetricsClock.monotonicNanoseconds() - start) / 1_000 / 1e3
        print("bench: totals() \(Int(totalsMicroseconds)) µs, job(id:) \(Int(lookupMicroseconds)) µs with \(jobs) jobs")
    }
}
