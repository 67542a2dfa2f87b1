// `/metrics` exposition: structure, pre-registered label sets at 0, event accounting, promtool lint, /proc values.
import Locks
import Testing
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

/// Each catalogue family appears exactly once, with its declared type; the order is the library's (Prometheus reads
/// families in any order).
private func expectCatalogueFamilies(_ exposition: Exposition) {
    #expect(exposition.familyOrder.count == Set(exposition.familyOrder).count)
    #expect(Set(exposition.familyOrder) == Set(MetricFamily.all.map(\.name)))
    for family in MetricFamily.all {
        #expect(exposition.types[family.name] == family.kind.rawValue, "\(family.name)")
        #expect(exposition.help[family.name] == family.help, "\(family.name)")
    }
}

private func makeRegistry() -> ValetMetricsRegistry {
    ValetMetricsRegistry(
        version: "1.2.3", revision: "abc123", model: "SmolLM2-135M-Instruct", quantization: "Q4_1",
        contextLength: 2_048, httpHandlers: ["chat_completions", "completions", "metrics", "jobs"])
}

/// A known sequence: two stops, a length, a queue-full rejection, an eviction, a queue timeout, a cancel.
private func knownJobs(now: Double) -> [JobRecord] {
    func completed(_ id: String, _ reason: String, prompt: Int, completion: Int) -> JobRecord {
        JobRecord(
            id: id, model: "m", priority: "normal", status: .completed, finishReason: reason,
            promptTokens: prompt, completionTokens: completion, costBlocks: 2,
            enqueuedAt: now - 2, admittedAt: now - 1.5, firstTokenAt: now - 1, finishedAt: now)
    }
    return [
        completed("a", "stop", prompt: 10, completion: 3),
        completed("b", "stop", prompt: 20, completion: 4),
        completed("c", "length", prompt: 30, completion: 16),
        JobRecord(id: "d", model: "m", priority: "low", status: .queueFull, promptTokens: 7, completionTokens: 0,
                  costBlocks: 1, enqueuedAt: now, finishedAt: now, error: "lot full"),
        JobRecord(id: "e", model: "m", priority: "low", status: .evicted, promptTokens: 8, completionTokens: 0,
                  costBlocks: 1, enqueuedAt: now - 1, finishedAt: now, error: "evicted"),
        JobRecord(id: "f", model: "m", priority: "high", status: .queueTimeout, promptTokens: 9, completionTokens: 0,
                  costBlocks: 1, enqueuedAt: now - 5, finishedAt: now, error: "waited 5 s"),
        JobRecord(id: "g", model: "m", priority: "normal", status: .cancelled, promptTokens: 40, completionTokens: 2,
                  costBlocks: 3, enqueuedAt: now - 3, admittedAt: now - 2.5, firstTokenAt: now - 2, finishedAt: now,
                  error: "client went away"),
    ]
}

@Suite("Metrics registry")
struct MetricsRegistryTests {
    @Test func prefixCacheFamiliesFollowTheSchedulersTotalsAndGauge() throws {
        let registry = makeRegistry()
        let fresh = try Exposition(registry.render())
        for name in ["valet_prefix_cache_queries_total", "valet_prefix_cache_hits_total",
                     "valet_prefix_cache_evictions_total", "valet_prefix_cache_blocks"] {
            #expect(fresh.value(name, [:]) == 0, "\(name)")
        }
        registry.setPrefixCacheTotals(queryTokens: 100, hitTokens: 48, evictions: 1)
        registry.setPrefixCacheTotals(queryTokens: 250, hitTokens: 144, evictions: 3)
        // An older report arriving late adds nothing and takes nothing back.
        registry.setPrefixCacheTotals(queryTokens: 100, hitTokens: 48, evictions: 1)
        registry.setSchedulerState(running: 1, waiting: WaitingCounts(), capacityBlocks: 64, usedBlocks: 10,
                                   cachedBlocks: 7, batchSize: 1)
        let e = try Exposition(registry.render())
        expectCatalogueFamilies(e)
        #expect(e.value("valet_prefix_cache_queries_total", [:]) == 250)
        #expect(e.value("valet_prefix_cache_hits_total", [:]) == 144)
        #expect(e.value("valet_prefix_cache_evictions_total", [:]) == 3)
        #expect(e.value("valet_prefix_cache_blocks", [:]) == 7)
        #expect(e.value("valet_capacity_blocks_in_use", [:]) == 10)
        #expect(e.types["valet_prefix_cache_blocks"] == "gauge" && e.types["valet_prefix_cache_hits_total"] == "counter")
    }

    @Test func freshRegistryHasEveryFamilyAndLabelSetAtZero() throws {
        let text = makeRegistry().render()
        let exposition = try Exposition(text)
        expectCatalogueFamilies(exposition)
        for family in exposition.familyOrder {
            #expect(exposition.help[family]?.isEmpty == false, "\(family) has no HELP")
            if exposition.types[family] == "counter" { #expect(family.hasSuffix("_total")) }
        }
        #expect(exposition.value("valet_build_info", ["version": "1.2.3", "revision": "abc123", "kernel": "unknown"]) == 1)
        #expect(exposition.value("valet_num_requests_waiting") == 0)
        #expect(exposition.value("valet_model_info", ["model": "SmolLM2-135M-Instruct", "quantization": "Q4_1"]) == 1)
        for priority in ["low", "normal", "high", "critical"] {
            #expect(exposition.value("valet_requests_waiting", ["priority": priority]) == 0)
        }
        for reason in ["stop", "length"] {
            #expect(exposition.value("valet_request_success_total", ["finished_reason": reason]) == 0)
        }
        for reason in ["cancelled", "queue_timeout", "shutdown", "engine_error"] {
            #expect(exposition.value("valet_request_failures_total", ["reason": reason]) == 0)
        }
        for reason in ["too_large", "queue_full", "evicted"] {
            #expect(exposition.value("valet_admission_rejections_total", ["reason": reason]) == 0)
        }
        for name in ["valet_prompt_tokens_total", "valet_generation_tokens_total", "valet_preemptions_total",
                     "valet_suspensions_total",
                     "valet_recorder_dropped_total", "valet_requests_running", "valet_kv_cache_usage_ratio"] {
            #expect(exposition.value(name) == 0, "\(name)")
        }
        #expect(exposition.value("valet_e2e_request_latency_seconds_count") == 0)
        #expect(exposition.value("valet_e2e_request_latency_seconds_bucket", ["le": "0.001"]) == 0)
        for lock in ["scheduler", "streams", "kv_pool", "recorder"] {
            #expect(exposition.value("valet_lock_wait_seconds_bucket", ["lock": lock, "le": "1e-07"]) != nil)
            #expect(exposition.value("valet_lock_wait_seconds_count", ["lock": lock]) != nil)
        }
        for handler in ["chat_completions", "completions", "metrics", "jobs", "other"] {
            #expect(exposition.value("valet_http_request_duration_seconds_count", ["handler": handler]) == 0)
        }
        // Token histograms follow 1-2-5 up to the context length.
        #expect(exposition.value("valet_request_prompt_tokens_bucket", ["le": "1000"]) == 0)
        #expect(exposition.value("valet_request_prompt_tokens_bucket", ["le": "2048"]) == 0)
        #expect(exposition.value("valet_request_prompt_tokens_bucket", ["le": "5000"]) == nil)
    }

    @Test func eventsAreCountedExactly() throws {
        let registry = makeRegistry()
        let now = MetricsClock.unixSeconds()
        let jobs = knownJobs(now: now)
        for job in jobs { registry.jobFinished(job) }
        for _ in 0..<5 { registry.tokenEmitted(interTokenSeconds: 0.02) }
        registry.jobPreempted()
        registry.jobSuspended()
        registry.jobSuspended()
        registry.setSchedulerState(
            running: 3, waiting: WaitingCounts(low: 1, normal: 2, critical: 4), capacityBlocks: 64, usedBlocks: 16,
            batchSize: 3)
        registry.httpRequest(handler: "chat_completions", method: "POST", status: 200, durationSeconds: 0.5)
        registry.httpRequest(handler: "chat_completions", method: "POST", status: 429, durationSeconds: 0.001)
        registry.httpRequest(handler: "/v1/jobs/chatcmpl-123", method: "BREW", status: 999, durationSeconds: 0.002)

        let e = try Exposition(registry.render())
        expectCatalogueFamilies(e)
        #expect(e.value("valet_request_success_total", ["finished_reason": "stop"]) == 2)
        #expect(e.value("valet_request_success_total", ["finished_reason": "length"]) == 1)
        #expect(e.value("valet_admission_rejections_total", ["reason": "queue_full"]) == 1)
        #expect(e.value("valet_admission_rejections_total", ["reason": "evicted"]) == 1)
        #expect(e.value("valet_admission_rejections_total", ["reason": "too_large"]) == 0)
        #expect(e.value("valet_request_failures_total", ["reason": "queue_timeout"]) == 1)
        #expect(e.value("valet_request_failures_total", ["reason": "cancelled"]) == 1)
        // Prompt tokens of admitted jobs (a, b, c, g); generated tokens of all.
        #expect(e.value("valet_prompt_tokens_total") == 100)
        #expect(e.value("valet_generation_tokens_total") == 25)
        #expect(e.value("valet_e2e_request_latency_seconds_count") == 3)
        #expect(e.value("valet_e2e_request_latency_seconds_sum") == 6)
        #expect(e.value("valet_request_queue_time_seconds_count") == 4)
        #expect(e.value("valet_time_to_first_token_seconds_count") == 4)
        #expect(e.value("valet_request_prefill_time_seconds_count") == 4)
        #expect(e.value("valet_request_decode_time_seconds_count") == 4)
        #expect(e.value("valet_request_prompt_tokens_count") == 3)
        #expect(e.value("valet_request_prompt_tokens_bucket", ["le": "10"]) == 1)
        #expect(e.value("valet_request_prompt_tokens_bucket", ["le": "20"]) == 2)
        #expect(e.value("valet_request_generation_tokens_bucket", ["le": "5"]) == 2)
        #expect(e.value("valet_inter_token_latency_seconds_count") == 5)
        #expect(e.value("valet_inter_token_latency_seconds_bucket", ["le": "0.015"]) == 0)
        #expect(e.value("valet_inter_token_latency_seconds_bucket", ["le": "0.02"]) == 5)
        #expect(e.value("valet_preemptions_total") == 1)
        #expect(e.value("valet_suspensions_total") == 2)
        #expect(e.value("valet_requests_running") == 3)
        #expect(e.value("valet_requests_waiting", ["priority": "critical"]) == 4)
        #expect(e.value("valet_kv_cache_usage_ratio") == 0.25)
        #expect(e.value("valet_capacity_blocks_in_use") == 16)
        #expect(e.value("valet_http_requests_total", ["handler": "chat_completions", "method": "POST", "status": "200"]) == 1)
        #expect(e.value("valet_http_requests_total", ["handler": "chat_completions", "method": "POST", "status": "429"]) == 1)
        #expect(e.value("valet_http_requests_total", ["handler": "other", "method": "other", "status": "other"]) == 1)
        #expect(e.value("valet_http_request_duration_seconds_count", ["handler": "chat_completions"]) == 2)
        #expect(e.value("valet_http_request_duration_seconds_count", ["handler": "other"]) == 1)
        // Every job is counted in exactly one of the three outcome families.
        let outcomes = e.samples.filter {
            ["valet_request_success_total", "valet_request_failures_total", "valet_admission_rejections_total"]
                .contains($0.name)
        }.map(\.value).reduce(0, +)
        #expect(outcomes == Double(jobs.count))
    }

    @Test func httpCountersExistFromStartupAndUnknownsCountAsOther() throws {
        let registry = makeRegistry()
        let handlers = ["chat_completions", "completions", "metrics", "jobs", "other"]
        let methods = ["GET", "POST", "other"]
        let statuses = ["200", "400", "401", "404", "405", "413", "415", "429", "431", "499", "500", "503", "other"]
        var expected: Set<[String: String]> = []
        for handler in handlers {
            for method in methods {
                for status in statuses { expected.insert(["handler": handler, "method": method, "status": status]) }
            }
        }
        func series(_ e: Exposition) -> [Sample] { e.samples.filter { $0.name == "valet_http_requests_total" } }

        let fresh = try Exposition(registry.render())
        #expect(Set(series(fresh).map(\.labels)) == expected)
        #expect(series(fresh).count == expected.count)
        #expect(series(fresh).allSatisfy { $0.value == 0 })

        registry.httpRequest(handler: "/v1/jobs/chatcmpl-9", method: "GET", status: 200, durationSeconds: 0.001)
        registry.httpRequest(handler: "metrics", method: "BREW", status: 200, durationSeconds: 0.001)
        registry.httpRequest(handler: "metrics", method: "GET", status: 418, durationSeconds: 0.001)
        registry.httpRequest(handler: "nope", method: "get", status: 999, durationSeconds: 0.001)
        let e = try Exposition(registry.render())
        #expect(Set(series(e).map(\.labels)) == expected, "an unknown value made a new series")
        let counted = [
            ["handler": "other", "method": "GET", "status": "200"],
            ["handler": "metrics", "method": "other", "status": "200"],
            ["handler": "metrics", "method": "GET", "status": "other"],
            ["handler": "other", "method": "other", "status": "other"],
        ]
        for labels in counted { #expect(e.value("valet_http_requests_total", labels) == 1, "\(labels)") }
        #expect(series(e).map(\.value).reduce(0, +) == 4)
        #expect(e.value("valet_http_request_duration_seconds_count", ["handler": "other"]) == 2)
        #expect(e.value("valet_http_request_duration_seconds_count", ["handler": "metrics"]) == 2)
    }

    @Test func countersAgreeWithTheJobsTable() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(path: dir.file("valet.sqlite"))
        defer { recorder.close() }
        let registry = makeRegistry()
        for job in knownJobs(now: MetricsClock.unixSeconds()) {
            recorder.record(job)
            registry.jobFinished(job)
        }
        #expect(recorder.flush())
        let totals = try recorder.totals()
        let e = try Exposition(registry.render())
        for status in JobRecord.Status.allCases where status != .completed {
            let family = status.isRejection ? "valet_admission_rejections_total" : "valet_request_failures_total"
            #expect(e.value(family, ["reason": status.rawValue]) == Double(totals.byStatus[status.rawValue] ?? 0))
        }
        for reason in ["stop", "length"] {
            #expect(e.value("valet_request_success_total", ["finished_reason": reason])
                    == Double(totals.byFinishReason[reason] ?? 0))
        }
        #expect(e.value("valet_generation_tokens_total") == Double(totals.completionTokens))
        #expect(e.value("valet_e2e_request_latency_seconds_count") == Double(totals.byStatus["completed"] ?? 0))
    }

    @Test func renderIsStable() throws {
        let a = makeRegistry()
        let b = makeRegistry()
        // Process values change between scrapes; compare everything else.
        func stable(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter { !$0.hasPrefix("process_") && !$0.hasPrefix("valet_lock_wait") }
        }
        // Two registries may list families in different orders (the library's choice); the lines are the same.
        #expect(stable(a.render()).sorted() == stable(b.render()).sorted())
        #expect(stable(a.render()) == stable(a.render()))
    }

    @Test func droppedSamplesFollowTheRecorder() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(
            path: dir.file("valet.sqlite"), options: RecorderOptions(flushInterval: 1, sampleCapacity: 2))
        defer { recorder.close() }
        let registry = makeRegistry()
        registry.attach(recorder: recorder)
        for i in 0..<50 {
            recorder.record(QueueSample(time: 0, queued: i, running: 0, usedBlocks: 0, totalBlocks: 1))
        }
        let dropped = recorder.droppedCount
        #expect(dropped > 0)
        let e = try Exposition(registry.render())
        #expect(e.value("valet_recorder_dropped_total") == Double(dropped))
    }

    @Test func processMetricsComeFromProc() throws {
        let e = try Exposition(makeRegistry().render())
        let now = MetricsClock.unixSeconds()
        #expect((e.value("process_cpu_seconds_total") ?? 0) > 0)
        #expect((e.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((e.value("process_virtual_memory_bytes") ?? 0) >= (e.value("process_resident_memory_bytes") ?? 0))
        let start = e.value("process_start_time_seconds") ?? 0
        #expect(start > now - 86_400 && start <= now + 1)
        #expect((e.value("process_open_fds") ?? 0) >= 3)
        #expect((e.value("process_max_fds") ?? 0) >= (e.value("process_open_fds") ?? 0))
        #expect((e.value("process_threads") ?? 0) >= 1)
    }

    @Test func promtoolFindsNothing() throws {
        guard access("/usr/bin/promtool", X_OK) == 0 || shell("command -v promtool").status == 0 else {
            print("SKIPPED promtoolFindsNothing: promtool is not installed (apt-get install prometheus)")
            return
        }
        let registry = makeRegistry()
        for job in knownJobs(now: MetricsClock.unixSeconds()) { registry.jobFinished(job) }
        registry.tokenEmitted(interTokenSeconds: 0.03)
        registry.httpRequest(handler: "metrics", method: "GET", status: 200, durationSeconds: 0.001)
        registry.setModelInfo(model: "weird \"model\"\\name\nx", quantization: "Q4_1")
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.file("metrics.txt")
        let text = registry.render()
        let handle = fopen(file, "w")
        try #require(handle != nil)
        fputs(text, handle)
        fclose(handle)
        let result = shell("promtool check metrics < '\(file)'")
        #expect(result.status == 0)
        #expect(result.output == "", "promtool said: \(result.output)")
        // The odd model name must survive escaping and parse back intact.
        let e = try Exposition(text)
        #expect(e.value("valet_model_info", ["model": "weird \"model\"\\name\nx", "quantization": "Q4_1"]) == 1)
        #expect(e.samples.filter { $0.name == "valet_model_info" }.count == 1)
    }
}
