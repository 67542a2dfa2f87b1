// What a finished job adds to `/metrics`: one outcome counter, its tokens, and its phase durations and sizes.
import Prometheus

struct JobMetrics: Sendable {
    static let finishReasons = ["stop", "length"]

    private let promptTokens: Counter
    private let generationTokens: Counter
    private let successes: [String: Counter]
    private let failures: [String: Counter]
    private let rejections: [String: Counter]
    private let structured: [String: Counter]

    let timeToFirstToken = HistogramFamily(.timeToFirstToken, bounds: MetricBuckets.timeToFirstToken)
    let interTokenLatency = HistogramFamily(.interTokenLatency, bounds: MetricBuckets.interTokenLatency)
    private let endToEndLatency = HistogramFamily(.endToEndLatency, bounds: MetricBuckets.requestDuration)
    private let queueTime = HistogramFamily(.queueTime, bounds: MetricBuckets.requestDuration)
    private let prefillTime = HistogramFamily(.prefillTime, bounds: MetricBuckets.requestDuration)
    private let decodeTime = HistogramFamily(.decodeTime, bounds: MetricBuckets.requestDuration)
    private let promptTokensPerRequest: HistogramFamily
    private let generationTokensPerRequest: HistogramFamily

    /// - Parameter contextLength: top of the token-count histograms.
    init(contextLength: Int, in registry: PrometheusCollectorRegistry) {
        promptTokens = registry.counter(.promptTokens)
        generationTokens = registry.counter(.generationTokens)
        successes = registry.counters(.requestSuccess, values: Self.finishReasons)
        let statuses = JobRecord.Status.allCases
        failures = registry.counters(.requestFailures, values: statuses.filter(\.isFailure).map(\.rawValue))
        rejections = registry.counters(.admissionRejections, values: statuses.filter(\.isRejection).map(\.rawValue))
        structured = registry.counters(.structuredRequests, values: ["json_schema", "json_object", "tools"])
        let tokenBounds = MetricBuckets.tokenCounts(upTo: contextLength)
        promptTokensPerRequest = HistogramFamily(.promptTokensPerRequest, bounds: tokenBounds)
        generationTokensPerRequest = HistogramFamily(.generationTokensPerRequest, bounds: tokenBounds)
    }

    /// The histogram families, in the order they are written.
    var histograms: [HistogramFamily] {
        [timeToFirstToken, interTokenLatency, endToEndLatency, queueTime, prefillTime, decodeTime,
         promptTokensPerRequest, generationTokensPerRequest]
    }

    /// Counts `job` in exactly one of success / failure / rejection. Prompt tokens count for admitted jobs,
    /// generated tokens for every job.
    func record(_ job: JobRecord) {
        switch job.status {
        case .completed:
            let reason = job.finishReason.flatMap { Self.finishReasons.contains($0) ? $0 : nil } ?? "stop"
            successes[reason]?.increment()
        case let status where status.isRejection:
            rejections[status.rawValue]?.increment()
        case let status:
            failures[status.rawValue]?.increment()
        }
        structured[job.constraint]?.increment()
        if job.admittedAt != nil { promptTokens.increment(by: Int64(max(job.promptTokens, 0))) }
        generationTokens.increment(by: Int64(max(job.completionTokens, 0)))

        if let admitted = job.admittedAt {
            queueTime.histogram.observe(max(admitted - job.enqueuedAt, 0))
        }
        if let firstToken = job.firstTokenAt {
            timeToFirstToken.histogram.observe(max(firstToken - job.enqueuedAt, 0))
            prefillTime.histogram.observe(max(firstToken - (job.admittedAt ?? job.enqueuedAt), 0))
            decodeTime.histogram.observe(max(job.finishedAt - firstToken, 0))
        }
        if job.status == .completed {
            endToEndLatency.histogram.observe(max(job.finishedAt - job.enqueuedAt, 0))
            promptTokensPerRequest.histogram.observe(Double(job.promptTokens))
            generationTokensPerRequest.histogram.observe(Double(job.completionTokens))
        }
    }
}
