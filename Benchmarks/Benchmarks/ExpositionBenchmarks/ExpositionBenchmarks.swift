// package-benchmark micro-benchmarks of the metrics path: rendering the Prometheus exposition of a registry
// that has seen traffic, and the per-job and per-token calls the request path makes.
import Benchmark
import Foundation
import ValetMetrics

func configureDefaults() {
    let seconds = Double(ProcessInfo.processInfo.environment["VALET_BENCH_MAX_SECONDS"] ?? "") ?? 2
    Benchmark.defaultConfiguration = .init(
        // JMH export (how bench/run.py reads results) requires the throughput metric.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        maxDuration: .milliseconds(Int(seconds * 1000)),
        maxIterations: 1_000_000
    )
}

/// A finished job as the scheduler would report it.
func job(_ i: Int) -> JobRecord {
    let t = 1_800_000_000 + Double(i)
    return JobRecord(
        id: "chatcmpl-\(i)", model: "SmolLM2-135M-Instruct.Q4_1", priority: i % 5 == 0 ? "high" : "normal",
        status: i % 10 == 9 ? .queueFull : .completed, finishReason: i % 2 == 0 ? "length" : "stop",
        promptTokens: 20 + i % 300, completionTokens: i % 64, costBlocks: 1 + i % 23,
        enqueuedAt: t, admittedAt: t + 0.01 * Double(i % 7), firstTokenAt: t + 0.2, finishedAt: t + 1.5)
}

let benchmarks: @Sendable () -> Void = {
    configureDefaults()
    let handlers = ["chat_completions", "completions", "models", "health", "metrics", "v1_metrics", "jobs"]
    let registry = ValetMetricsRegistry(
        version: "bench", revision: "bench", model: "SmolLM2-135M-Instruct.Q4_1", quantization: "Q4_1",
        contextLength: 8_192, httpHandlers: handlers)
    // Traffic so every histogram has counts spread over its buckets and every label set exists.
    for i in 0..<5_000 {
        registry.jobFinished(job(i))
        registry.tokenEmitted(interTokenSeconds: 0.002 + Double(i % 50) * 0.001)
        registry.httpRequest(handler: handlers[i % handlers.count], method: i % 3 == 0 ? "GET" : "POST",
                             status: i % 17 == 0 ? 429 : 200, durationSeconds: 0.001 * Double(i % 300))
    }
    registry.setSchedulerState(
        running: 8, waiting: WaitingCounts(low: 1, normal: 4, high: 2), capacityBlocks: 1024, usedBlocks: 700,
        batchSize: 8)

    Benchmark("Prometheus render, full exposition") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry.renderBytes())
        }
    }
    Benchmark("registry.jobFinished (per job)") { benchmark in
        var i = 0
        for _ in benchmark.scaledIterations {
            registry.jobFinished(job(i))
            i &+= 1
        }
    }
    Benchmark("registry.tokenEmitted (per token)") { benchmark in
        for _ in benchmark.scaledIterations {
            registry.tokenEmitted(interTokenSeconds: 0.004)
        }
    }
}
