// Valet's Prometheus metrics: every family and known label set created at startup, updated by event-named
// methods (atomics only), rendered in text format 0.0.4 in a fixed family order. Scrapes never touch SQLite.
import Locks
import Prometheus
import Synchronization

/// The `/metrics` registry. Counters and gauges are swift-prometheus collectors, each family in its own
/// `PrometheusCollectorRegistry` so the output order is fixed (one shared registry emits in hash order).
/// Histograms are Valet's own lock-free ones (the library's locks per observation), and the lock-wait histogram is
/// rendered from `InstrumentedLocks` (the library cannot export counts kept elsewhere); both use the same format.
public final class ValetMetricsRegistry: Sendable {
    /// The `Content-Type` of `render()`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// Label value used for anything outside a bounded set (unknown handler, method or status).
    public static let otherLabel = "other"
    static let priorities = ["low", "normal", "high", "critical"]
    static let finishReasons = ["stop", "length"]
    static let httpMethods: Set<String> = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]

    private enum Family: Sendable {
        case library(PrometheusCollectorRegistry)
        case histogram(name: String, help: String, series: [HistogramSeries])
        case lockWaits
    }

    private struct HistogramSeries: Sendable {
        var labels: [(String, String)]
        var histogram: AtomicHistogram
    }

    private struct RenderState {
        var droppedSource: (@Sendable () -> UInt64)?
        var droppedReported: UInt64 = 0
        var cpuReported: Double = 0
    }

    private let families: [Family]

    private let requestsRunning: Gauge
    private let requestsWaiting: [Gauge]
    private let batchSize: Gauge
    private let capacityBlocks: Gauge
    private let capacityBlocksInUse: Gauge
    private let kvCacheUsage: Gauge

    private let promptTokens: Counter
    private let generationTokens: Counter
    private let successes: [String: Counter]
    private let failures: [String: Counter]
    private let rejections: [String: Counter]
    private let preemptions: Counter
    private let suspensions: Counter
    private let recorderDropped: Counter

    private let timeToFirstToken = AtomicHistogram(bounds: MetricBuckets.timeToFirstToken)
    private let interTokenLatency = AtomicHistogram(bounds: MetricBuckets.interTokenLatency)
    private let endToEndLatency = AtomicHistogram(bounds: MetricBuckets.requestDuration)
    private let queueTime = AtomicHistogram(bounds: MetricBuckets.requestDuration)
    private let prefillTime = AtomicHistogram(bounds: MetricBuckets.requestDuration)
    private let decodeTime = AtomicHistogram(bounds: MetricBuckets.requestDuration)
    private let promptTokensPerRequest: AtomicHistogram
    private let generationTokensPerRequest: AtomicHistogram

    private let httpRequests: PrometheusCollectorRegistry
    private let httpDurations: [String: AtomicHistogram]

    private let modelInfoRegistry: PrometheusCollectorRegistry
    private let modelInfo = Mutex<Gauge?>(nil)

    private let processCPU: Counter
    private let processResident: Gauge
    private let processVirtual: Gauge
    private let processStartTime: Gauge
    private let processOpenFDs: Gauge
    private let processMaxFDs: Gauge
    private let processThreads: Gauge
    private let bootTime = ProcessMetrics.bootTime()

    private let renderState = Mutex(RenderState())

    /// - Parameters:
    ///   - version, revision: `valet_build_info` labels.
    ///   - model, quantization: `valet_model_info` labels, if already known (else call `setModelInfo`).
    ///   - contextLength: top of the token-count histograms.
    ///   - httpHandlers: route names used as the `handler` label (`chat_completions`, `metrics`, ...); anything else
    ///     is counted as `other`.
    public init(
        version: String, revision: String, model: String? = nil, quantization: String? = nil,
        contextLength: Int = 8_192, httpHandlers: [String] = []
    ) {
        var families: [Family] = []
        func single(_ build: (PrometheusCollectorRegistry) -> Void) {
            let registry = PrometheusCollectorRegistry()
            build(registry)
            families.append(.library(registry))
        }
        func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
            var made: Gauge?
            single { made = $0.makeGauge(descriptor: Self.descriptor(name, help), labels: labels) }
            return made!
        }
        func counter(_ name: String, _ help: String) -> Counter {
            var made: Counter?
            single { made = $0.makeCounter(descriptor: Self.descriptor(name, help), labels: []) }
            return made!
        }
        func counters(_ name: String, _ help: String, label: String, values: [String]) -> [String: Counter] {
            var made: [String: Counter] = [:]
            single { registry in
                for value in values {
                    made[value] = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: [(label, value)])
                }
            }
            return made
        }

        single { registry in
            registry.makeGauge(
                descriptor: Self.descriptor("valet_build_info", "Build of the running Valet; the value is always 1."),
                labels: [("version", version), ("revision", revision)]
            ).set(to: 1)
        }
        modelInfoRegistry = PrometheusCollectorRegistry()
        families.append(.library(modelInfoRegistry))

        requestsRunning = gauge("valet_requests_running", "Jobs admitted and running in the engine.")
        var waiting: [Gauge] = []
        single { registry in
            waiting = Self.priorities.map { priority in
                registry.makeGauge(
                    descriptor: Self.descriptor("valet_requests_waiting", "Jobs parked in the lot, by priority."),
                    labels: [("priority", priority)])
            }
        }
        requestsWaiting = waiting
        batchSize = gauge("valet_batch_size", "Sequences in the engine's current batched step.")
        capacityBlocks = gauge("valet_capacity_blocks", "KV-cache blocks the scheduler may hand out.")
        capacityBlocksInUse = gauge("valet_capacity_blocks_in_use", "KV-cache blocks reserved by admitted jobs.")
        kvCacheUsage = gauge("valet_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use, 0 to 1.")

        promptTokens = counter("valet_prompt_tokens_total", "Prompt tokens of admitted jobs that ended.")
        generationTokens = counter("valet_generation_tokens_total", "Tokens generated by jobs that ended.")
        successes = counters(
            "valet_request_success_total", "Jobs that generated to a normal end, by finish reason.",
            label: "finished_reason", values: Self.finishReasons)
        failures = counters(
            "valet_request_failures_total", "Jobs that ended without a normal finish (not counting rejections), by reason.",
            label: "reason", values: JobRecord.Status.allCases.filter(\.isFailure).map(\.rawValue))
        rejections = counters(
            "valet_admission_rejections_total", "Jobs refused by admission control, by reason.",
            label: "reason", values: JobRecord.Status.allCases.filter(\.isRejection).map(\.rawValue))
        preemptions = counter("valet_preemptions_total", "Running jobs sent back to the lot to free KV-cache blocks.")
        suspensions = counter(
            "valet_suspensions_total", "Running jobs that lent their decode row to higher-priority work, keeping their blocks.")
        recorderDropped = counter(
            "valet_recorder_dropped_total", "Queue and lock-wait samples dropped because the recorder buffer was full.")

        promptTokensPerRequest = AtomicHistogram(bounds: MetricBuckets.tokenCounts(upTo: contextLength))
        generationTokensPerRequest = AtomicHistogram(bounds: MetricBuckets.tokenCounts(upTo: contextLength))
        func histogram(_ name: String, _ help: String, _ h: AtomicHistogram) {
            families.append(.histogram(name: name, help: help, series: [HistogramSeries(labels: [], histogram: h)]))
        }
        histogram("valet_time_to_first_token_seconds",
                  "From arrival to the first generated token, for jobs that produced one.", timeToFirstToken)
        histogram("valet_inter_token_latency_seconds", "Gap between consecutive tokens of one job.", interTokenLatency)
        histogram("valet_e2e_request_latency_seconds", "From arrival to the end, for completed jobs.", endToEndLatency)
        histogram("valet_request_queue_time_seconds", "Time parked in the lot, for admitted jobs.", queueTime)
        histogram("valet_request_prefill_time_seconds",
                  "From admission to the first token, for jobs that produced one.", prefillTime)
        histogram("valet_request_decode_time_seconds",
                  "From the first token to the end, for jobs that produced one.", decodeTime)
        histogram("valet_request_prompt_tokens", "Prompt length of completed jobs, in tokens.", promptTokensPerRequest)
        histogram("valet_request_generation_tokens", "Tokens generated by completed jobs.", generationTokensPerRequest)
        families.append(.lockWaits)

        httpRequests = PrometheusCollectorRegistry()
        families.append(.library(httpRequests))
        let handlers = Set(httpHandlers + [Self.otherLabel]).sorted()
        let durations = Dictionary(uniqueKeysWithValues: handlers.map {
            ($0, AtomicHistogram(bounds: MetricBuckets.httpDuration))
        })
        httpDurations = durations
        families.append(.histogram(
            name: "valet_http_request_duration_seconds", help: "Time to handle an HTTP request, by route.",
            series: handlers.map { HistogramSeries(labels: [("handler", $0)], histogram: durations[$0]!) }))

        processCPU = counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        processResident = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        processVirtual = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        processStartTime = gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
        processOpenFDs = gauge("process_open_fds", "Number of open file descriptors.")
        processMaxFDs = gauge("process_max_fds", "Maximum number of open file descriptors.")
        processThreads = gauge("process_threads", "Number of OS threads in the process.")

        self.families = families
        if let model { setModelInfo(model: model, quantization: quantization ?? "unknown") }
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    // MARK: Events

    /// The loaded model, for `valet_model_info` (replaces an earlier one).
    public func setModelInfo(model: String, quantization: String) {
        modelInfo.withLock { current in
            if let current { modelInfoRegistry.unregisterGauge(current) }
            let gauge = modelInfoRegistry.makeGauge(
                descriptor: Self.descriptor("valet_model_info", "The model being served; the value is always 1."),
                labels: [("model", model), ("quantization", quantization)])
            gauge.set(to: 1)
            current = gauge
        }
    }

    /// Makes `valet_recorder_dropped_total` follow this recorder's `droppedCount`.
    public func attach(recorder: Recorder) {
        renderState.withLock { state in
            state.droppedSource = { [weak recorder] in recorder?.droppedCount ?? 0 }
        }
    }

    /// The scheduler's current state; call on every change (cheap: a handful of atomic stores).
    /// - Parameter waitingByPriority: parked jobs indexed low, normal, high, critical (`Priority.rawValue` order).
    public func setSchedulerState(
        running: Int, waitingByPriority: [Int], capacityBlocks: Int, usedBlocks: Int, batchSize: Int
    ) {
        requestsRunning.set(to: Double(running))
        for (index, gauge) in requestsWaiting.enumerated() {
            gauge.set(to: Double(index < waitingByPriority.count ? waitingByPriority[index] : 0))
        }
        self.capacityBlocks.set(to: Double(capacityBlocks))
        capacityBlocksInUse.set(to: Double(usedBlocks))
        kvCacheUsage.set(to: capacityBlocks > 0 ? Double(usedBlocks) / Double(capacityBlocks) : 0)
        self.batchSize.set(to: Double(batchSize))
    }

    /// A generated token of some job; `interTokenSeconds` is the gap since that job's previous token
    /// (call it for the second and later tokens only).
    public func tokenEmitted(interTokenSeconds: Double) {
        interTokenLatency.observe(max(interTokenSeconds, 0))
    }

    /// A running job was sent back to the lot.
    public func jobPreempted() {
        preemptions.increment()
    }

    /// A running job paused for a higher-priority one, keeping its KV cache.
    public func jobSuspended() {
        suspensions.increment()
    }

    /// A job reached its terminal state: pass the same record given to `Recorder.record(_:)`, so the counters,
    /// histogram counts and `jobs` rows agree. Exactly one of success / failure / rejection is counted.
    /// Tokens: prompt tokens count for admitted jobs, generated tokens for every job.
    public func jobFinished(_ job: JobRecord) {
        switch job.status {
        case .completed:
            let reason = job.finishReason.flatMap { Self.finishReasons.contains($0) ? $0 : nil } ?? "stop"
            successes[reason]?.increment()
        case let status where status.isRejection:
            rejections[status.rawValue]?.increment()
        case let status:
            failures[status.rawValue]?.increment()
        }
        if job.admittedAt != nil { promptTokens.increment(by: Int64(max(job.promptTokens, 0))) }
        generationTokens.increment(by: Int64(max(job.completionTokens, 0)))

        if let admitted = job.admittedAt {
            queueTime.observe(max(admitted - job.enqueuedAt, 0))
        }
        if let firstToken = job.firstTokenAt {
            timeToFirstToken.observe(max(firstToken - job.enqueuedAt, 0))
            prefillTime.observe(max(firstToken - (job.admittedAt ?? job.enqueuedAt), 0))
            decodeTime.observe(max(job.finishedAt - firstToken, 0))
        }
        if job.status == .completed {
            endToEndLatency.observe(max(job.finishedAt - job.enqueuedAt, 0))
            promptTokensPerRequest.observe(Double(job.promptTokens))
            generationTokensPerRequest.observe(Double(job.completionTokens))
        }
    }

    /// One HTTP request handled. `handler` is a route name given at init (never a raw path), `status` the code.
    public func httpRequest(handler: String, method: String, status: Int, durationSeconds: Double) {
        let handlerLabel = httpDurations[handler] == nil ? Self.otherLabel : handler
        let methodLabel = Self.httpMethods.contains(method) ? method : Self.otherLabel
        let statusLabel = (100...599).contains(status) ? String(status) : Self.otherLabel
        httpRequests.makeCounter(
            descriptor: Self.descriptor("valet_http_requests_total", "HTTP requests handled, by route, method and status."),
            labels: [("handler", handlerLabel), ("method", methodLabel), ("status", statusLabel)]
        ).increment()
        httpDurations[handlerLabel]?.observe(max(durationSeconds, 0))
    }

    // MARK: Exposition

    /// The whole exposition as text format 0.0.4. Reads atomics and /proc only; a few hundred microseconds.
    public func render() -> String {
        String(decoding: renderBytes(), as: UTF8.self)
    }

    /// `render()` as UTF-8 bytes, ready for an HTTP body.
    public func renderBytes() -> [UInt8] {
        renderState.withLock { state -> [UInt8] in
            refreshScrapeTimeValues(&state)
            var writer = ExpositionWriter()
            writer.bytes.reserveCapacity(32_768)
            for family in families {
                switch family {
                case .library(let registry):
                    Self.appendSorted(registry, to: &writer.bytes)
                case let .histogram(name, help, series):
                    writer.header(name: name, help: help, type: "histogram")
                    for s in series {
                        let snapshot = s.histogram.snapshot()
                        writer.histogram(
                            name: name, labels: s.labels, bounds: s.histogram.bounds,
                            buckets: snapshot.buckets, sum: snapshot.sum)
                    }
                case .lockWaits:
                    let name = "valet_lock_wait_seconds"
                    writer.header(
                        name: name, help: "Time threads waited for a contended instrumented lock, by lock.",
                        type: "histogram")
                    for snapshot in InstrumentedLocks.snapshots() {
                        writer.histogram(
                            name: name, labels: [("lock", snapshot.name)],
                            bounds: LockWaitStatistics.bucketBoundsSeconds,
                            buckets: snapshot.bucketCounts, sum: snapshot.sumSeconds)
                    }
                }
            }
            return writer.bytes
        }
    }

    private func refreshScrapeTimeValues(_ state: inout RenderState) {
        if let source = state.droppedSource {
            let dropped = source()
            if dropped > state.droppedReported {
                recorderDropped.increment(by: Int64(dropped - state.droppedReported))
                state.droppedReported = dropped
            }
        }
        let process = ProcessMetrics.read(bootTime: bootTime)
        if process.cpuSeconds > state.cpuReported {
            processCPU.increment(by: process.cpuSeconds - state.cpuReported)
            state.cpuReported = process.cpuSeconds
        }
        processResident.set(to: process.residentBytes)
        processVirtual.set(to: process.virtualBytes)
        processStartTime.set(to: process.startTimeSeconds)
        processOpenFDs.set(to: process.openFileDescriptors)
        processMaxFDs.set(to: process.maxFileDescriptors)
        processThreads.set(to: process.threads)
    }

    /// Emits a one-family registry with its series lines sorted, so label sets keep a stable order too.
    private static func appendSorted(_ registry: PrometheusCollectorRegistry, to output: inout [UInt8]) {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var samples: [ArraySlice<UInt8>] = []
        for line in buffer.split(separator: UInt8(ascii: "\n")) {
            if line.first == UInt8(ascii: "#") {
                output.append(contentsOf: line)
                output.append(UInt8(ascii: "\n"))
            } else {
                samples.append(line)
            }
        }
        samples.sort { $0.lexicographicallyPrecedes($1) }
        for line in samples {
            output.append(contentsOf: line)
            output.append(UInt8(ascii: "\n"))
        }
    }
}
