// Valet's `/metrics`: the families of `MetricFamily`'s catalogue, all made at startup and updated by event-named
// methods with atomics only, rendered in text format 0.0.4. Scrapes never touch SQLite.
import Prometheus
import Locks
import Synchronization

/// The `/metrics` registry. Counters and gauges live in one swift-prometheus `PrometheusCollectorRegistry`, which
/// writes them in an order of its choosing (Prometheus reads families in any order). The histograms follow it: see
/// `AtomicHistogram` and `LockWaitHistograms` for why they are Valet's own.
public final class ValetMetricsRegistry: Sendable {
    /// The `Content-Type` of `render()`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// Label value used for anything outside a bounded set (unknown handler, method or status).
    public static let otherLabel = HTTPMetrics.other

    private struct RenderState {
        var recorder: (@Sendable () -> RecorderReading?)?
        var droppedReported: UInt64 = 0
        var writeErrorsReported: UInt64 = 0
        var cpuReported: Double = 0
    }

    private let library = PrometheusCollectorRegistry()
    private let scheduler: SchedulerGauges
    private let prefixCache: PrefixCacheCounters
    private let jobs: JobMetrics
    private let preemptions: Counter
    private let suspensions: Counter
    private let recorderDropped: Counter
    private let recorderWriteErrors: Counter
    private let recorderDegraded: Gauge
    private let recorderDatabaseBytes: Gauge
    private let http: HTTPMetrics
    private let grammarCompile = HistogramFamily(.grammarCompile, bounds: MetricBuckets.grammarCompile)
    private let process: ProcessGauges
    private let modelInfo = Locked<(labels: [String], gauge: Gauge)?>(nil)
    private let bootTime = ProcessMetrics.bootTime()
    private let renderState = Locked(RenderState())

    /// - Parameters:
    ///   - version, revision, kernel: `valet_build_info` labels (kernel: the CPU kernel path, `avx2` or `scalar`).
    ///   - model, quantization: `valet_model_info` labels, if already known (else call `setModelInfo`).
    ///   - contextLength: top of the token-count histograms.
    ///   - httpHandlers: route names used as the `handler` label (`chat_completions`, `metrics`, ...); anything else
    ///     is counted as `other`.
    public init(
        version: String, revision: String, kernel: String = "unknown", model: String? = nil, quantization: String? = nil,
        contextLength: Int = 8_192, httpHandlers: [String] = []
    ) {
        library.gauge(.buildInfo, version, revision, kernel).set(to: 1)
        scheduler = SchedulerGauges(in: library)
        prefixCache = PrefixCacheCounters(in: library)
        jobs = JobMetrics(contextLength: contextLength, in: library)
        preemptions = library.counter(.preemptions)
        suspensions = library.counter(.suspensions)
        recorderDropped = library.counter(.recorderDropped)
        recorderWriteErrors = library.counter(.recorderWriteErrors)
        recorderDegraded = library.gauge(.recorderDegraded)
        recorderDatabaseBytes = library.gauge(.recorderDatabaseBytes)
        http = HTTPMetrics(handlers: httpHandlers, in: library)
        process = ProcessGauges(in: library)
        if let model { setModelInfo(model: model, quantization: quantization ?? "unknown") }
    }

    // MARK: Events

    /// The loaded model, for `valet_model_info` (replaces an earlier one).
    public func setModelInfo(model: String, quantization: String) {
        let labels = [model, quantization]
        modelInfo.withLock { current in
            guard current?.labels != labels else { return }
            // Made before the old one goes, so a scrape in between never misses the family.
            let gauge = library.gauge(.modelInfo, model, quantization)
            gauge.set(to: 1)
            if let current { library.unregisterGauge(current.gauge) }
            current = (labels, gauge)
        }
    }

    /// Makes the `valet_recorder_*` families follow this recorder (its atomics, read at each scrape).
    public func attach(recorder: Recorder) {
        renderState.withLock { state in
            state.recorder = { [weak recorder] in
                recorder.map {
                    RecorderReading(dropped: $0.droppedCount, writeErrors: $0.writeFailureCount,
                                    degraded: $0.isDegraded, databaseBytes: $0.databaseBytes)
                }
            }
        }
    }

    /// The scheduler's current state; call on every change (cheap: a handful of atomic stores). `cachedBlocks` are
    /// the prefix cache's evictable blocks, which `usedBlocks` does not count.
    /// The scheduler's fixed limits, so alerts and autoscalers can compare live counts with them.
    public func setSchedulerLimits(maxBatch: Int, maxQueue: Int) {
        scheduler.setLimits(maxBatch: maxBatch, maxQueue: maxQueue)
    }

    public func setSchedulerState(
        running: Int, waiting: WaitingCounts, capacityBlocks: Int, usedBlocks: Int, cachedBlocks: Int = 0,
        batchSize: Int
    ) {
        scheduler.set(
            running: running, waiting: waiting, capacityBlocks: capacityBlocks, usedBlocks: usedBlocks,
            cachedBlocks: cachedBlocks, batchSize: batchSize)
    }

    /// The prefix cache's totals since start (prompt tokens queried and hit at first admission, blocks evicted);
    /// the counters advance to them. Call with every scheduler state change.
    public func setPrefixCacheTotals(queryTokens: Int, hitTokens: Int, evictions: Int) {
        prefixCache.advance(to: .init(queryTokens: queryTokens, hitTokens: hitTokens, evictions: evictions))
    }

    /// A generated token of some job; `interTokenSeconds` is the gap since that job's previous token
    /// (call it for the second and later tokens only).
    public func tokenEmitted(interTokenSeconds: Double) {
        jobs.interTokenLatency.histogram.observe(max(interTokenSeconds, 0))
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
    public func jobFinished(_ job: JobRecord) {
        jobs.record(job)
    }

    /// A constraint compiled to its grammar (not a cache hit), taking `seconds`.
    public func grammarCompiled(seconds: Double) {
        grammarCompile.histogram.observe(max(seconds, 0))
    }

    /// One HTTP request handled. `handler` is a route name given at init (never a raw path), `status` the code;
    /// unknown handlers, methods and statuses count as `other`.
    public func httpRequest(handler: String, method: String, status: Int, durationSeconds: Double) {
        http.record(handler: handler, method: method, status: status, seconds: durationSeconds)
    }

    // MARK: Exposition

    /// The whole exposition as text format 0.0.4. Reads atomics and /proc only.
    public func render() -> String {
        String(decoding: renderBytes(), as: UTF8.self)
    }

    /// `render()` as UTF-8 bytes, ready for an HTTP body.
    public func renderBytes() -> [UInt8] {
        renderState.withLock { state -> [UInt8] in
            refreshScrapeTimeValues(&state)
            var writer = ExpositionWriter()
            writer.bytes.reserveCapacity(196_608)
            library.emit(into: &writer.bytes)
            for family in jobs.histograms { family.write(to: &writer) }
            grammarCompile.write(to: &writer)
            http.durations.write(to: &writer)
            LockWaitHistograms.write(to: &writer)
            return writer.bytes
        }
    }

    private func refreshScrapeTimeValues(_ state: inout RenderState) {
        if let reading = state.recorder?() {
            if reading.dropped > state.droppedReported {
                recorderDropped.increment(by: Int64(reading.dropped - state.droppedReported))
                state.droppedReported = reading.dropped
            }
            if reading.writeErrors > state.writeErrorsReported {
                recorderWriteErrors.increment(by: Int64(reading.writeErrors - state.writeErrorsReported))
                state.writeErrorsReported = reading.writeErrors
            }
            recorderDegraded.set(to: reading.degraded ? 1 : 0)
            recorderDatabaseBytes.set(to: Double(reading.databaseBytes))
        }
        process.update(from: ProcessMetrics.read(bootTime: bootTime), cpuReported: &state.cpuReported)
    }
}

/// The recorder's figures one scrape shows.
private struct RecorderReading {
    var dropped: UInt64
    var writeErrors: UInt64
    var degraded: Bool
    var databaseBytes: Int
}
