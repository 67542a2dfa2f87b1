// Measurements the metrics tests run small (and at full size with VALET_METRICS_BENCH): instrumented-lock overhead,
// recorder throughput, scrape cost with a big database.
import Locks
@testable import ValetMetrics
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Benchmarks of the metrics layer. Each returns plain numbers; printing and thresholds belong to the caller.
enum MetricsBenchmarks {
    struct LockOverhead: Sendable, CustomStringConvertible {
        /// Nanoseconds per uncontended `Mutex.withLock`.
        var bareNanoseconds: Double
        /// Nanoseconds per uncontended `InstrumentedLock.withLock`.
        var instrumentedNanoseconds: Double
        var overheadNanoseconds: Double { instrumentedNanoseconds - bareNanoseconds }
        var description: String {
            "uncontended acquire: Mutex \(round2(bareNanoseconds)) ns, InstrumentedLock "
                + "\(round2(instrumentedNanoseconds)) ns (overhead \(round2(overheadNanoseconds)) ns)"
        }
    }

    /// Times uncontended acquire+release of both locks, interleaved, best of `rounds`.
    static func lockOverhead(iterations: Int = 5_000_000, rounds: Int = 5) -> LockOverhead {
        let bare = Locked(0)
        let instrumented = InstrumentedLock(name: "bench_uncontended", 0)
        var bestBare = Double.infinity
        var bestInstrumented = Double.infinity
        for _ in 0..<rounds {
            var start = MetricsClock.monotonicNanoseconds()
            for _ in 0..<iterations { bare.withLock { $0 &+= 1 } }
            bestBare = min(bestBare, Double(MetricsClock.monotonicNanoseconds() - start) / Double(iterations))
            start = MetricsClock.monotonicNanoseconds()
            for _ in 0..<iterations { instrumented.withLock { $0 &+= 1 } }
            bestInstrumented = min(
                bestInstrumented, Double(MetricsClock.monotonicNanoseconds() - start) / Double(iterations))
        }
        // Keep the loops observable so they are not optimized away.
        precondition(bare.withLock { $0 } == instrumented.withLock { $0 })
        return LockOverhead(bareNanoseconds: bestBare, instrumentedNanoseconds: bestInstrumented)
    }

    struct RecorderThroughput: Sendable, CustomStringConvertible {
        var jobs: Int
        /// From the first `record` to the end of the `flush` that committed the last row.
        var seconds: Double
        var rowsPerSecond: Double { Double(jobs) / seconds }
        /// Nanoseconds the producer spent per `record` call (what the request path pays).
        var recordNanoseconds: Double
        var description: String {
            "recorder: \(jobs) job rows committed in \(round2(seconds)) s = \(Int(rowsPerSecond)) rows/s; "
                + "record() costs \(round2(recordNanoseconds)) ns"
        }
    }

    /// Records `jobs` job rows (ids `bench-<offset+i>`) into `recorder` as fast as possible and flushes.
    static func recorderThroughput(recorder: Recorder, jobs: Int, idOffset: Int = 0) -> RecorderThroughput {
        let now = MetricsClock.unixSeconds()
        let start = MetricsClock.monotonicNanoseconds()
        for i in 0..<jobs {
            recorder.record(JobRecord(
                id: "bench-\(idOffset + i)", model: "bench", priority: "normal", status: .completed,
                finishReason: "stop", promptTokens: 100, completionTokens: 50, costBlocks: 10,
                enqueuedAt: now - 2, admittedAt: now - 1.5, firstTokenAt: now - 1, finishedAt: now))
        }
        let recorded = MetricsClock.monotonicNanoseconds()
        recorder.flush()
        let end = MetricsClock.monotonicNanoseconds()
        return RecorderThroughput(
            jobs: jobs, seconds: Double(end - start) / 1e9,
            recordNanoseconds: Double(recorded - start) / Double(max(jobs, 1)))
    }

    struct ScrapeCost: Sendable, CustomStringConvertible {
        var scrapes: Int
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        /// The same percentile in thread CPU time: the render's own work, without time lost to preemption.
        var p99CPUMilliseconds: Double
        var bytes: Int
        var description: String {
            "scrape: \(scrapes) renders of \(bytes) bytes, p50 \(round2(p50Milliseconds)) ms, "
                + "p99 \(round2(p99Milliseconds)) ms wall, p99 \(round2(p99CPUMilliseconds)) ms CPU"
        }
    }

    /// Renders `registry` `scrapes` times and reports the latency distribution.
    static func scrapeCost(registry: ValetMetricsRegistry, scrapes: Int = 200) -> ScrapeCost {
        var times: [Double] = []
        var cpuTimes: [Double] = []
        var bytes = 0
        for _ in 0..<max(scrapes, 1) {
            let start = MetricsClock.monotonicNanoseconds()
            let cpuStart = threadCPUNanoseconds()
            bytes = registry.renderBytes().count
            cpuTimes.append(Double(threadCPUNanoseconds() - cpuStart) / 1e6)
            times.append(Double(MetricsClock.monotonicNanoseconds() - start) / 1e6)
        }
        times.sort()
        cpuTimes.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double {
            values[min(values.count - 1, Int(Double(values.count) * p))]
        }
        return ScrapeCost(
            scrapes: times.count, p50Milliseconds: percentile(times, 0.5), p99Milliseconds: percentile(times, 0.99),
            p99CPUMilliseconds: percentile(cpuTimes, 0.99), bytes: bytes)
    }

    private static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    private static func round2(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        return String(scaled)
    }
}
