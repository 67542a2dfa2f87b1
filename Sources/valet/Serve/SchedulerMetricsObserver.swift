// The scheduler's observer feeding the job record and the Prometheus registry.
import OpenAIAPI
import Scheduling
import Foundation
import Inference
import ValetMetrics

/// The scheduler's observer: one `jobs` row and one set of counter updates per job, live gauges on every change.
struct SchedulerMetricsObserver: SchedulerObserver {
    let registry: ValetMetricsRegistry
    /// Both nil with `--no-recorder`: the registry still gets every update.
    let recorder: Recorder?
    let sampler: QueueSampler?

    func jobFinished(_ job: JobSnapshot) {
        let record = JobRecord(
            id: job.id, model: job.model, priority: job.priority.description, status: SchedulerMetricsObserver.status(job.end),
            finishReason: job.finishReason?.rawValue, promptTokens: job.promptTokens,
            completionTokens: job.completionTokens, cachedTokens: job.cachedTokens, costBlocks: job.costBlocks, enqueuedAt: job.enqueuedAt,
            admittedAt: job.admittedAt, firstTokenAt: job.firstTokenAt, finishedAt: job.finishedAt,
            error: job.failure.map { APIError.from($0).message }, kind: job.kind.rawValue,
            constraint: job.constraint)
        recorder?.record(record)
        registry.jobFinished(record)
    }

    func tokenEmitted(id: String, priority: Priority, gapSeconds: Double) {
        registry.tokenEmitted(interTokenSeconds: gapSeconds)
    }

    func jobPreempted(id: String, priority: Priority) { registry.jobPreempted() }
    func jobSuspended(id: String, priority: Priority) { registry.jobSuspended() }

    func stateChanged(_ s: SchedulerStats) {
        registry.setSchedulerState(
            running: s.running,
            waiting: WaitingCounts(low: s.queuedByPriority[.low] ?? 0, normal: s.queuedByPriority[.normal] ?? 0,
                                   high: s.queuedByPriority[.high] ?? 0, critical: s.queuedByPriority[.critical] ?? 0),
            capacityBlocks: s.totalBlocks, usedBlocks: s.blocksInUse, cachedBlocks: s.prefixCache.cachedBlocks,
            batchSize: s.batchSize)
        registry.setPrefixCacheTotals(queryTokens: s.prefixCache.queryTokens, hitTokens: s.prefixCache.hitTokens,
                                      evictions: s.prefixCache.evictions)
        sampler?.observe(queued: s.queued, running: s.running, usedBlocks: s.blocksInUse, totalBlocks: s.totalBlocks,
                         cachedBlocks: s.prefixCache.cachedBlocks)
    }

    /// The `jobs` status (and with it every /metrics ending counter) of each way a job can end: the one mapping
    /// from the scheduler's vocabulary to the record's.
    static func status(_ end: JobEnd) -> JobRecord.Status {
        switch end {
        case .finished: .completed
        case .rejected(.tooLarge): .tooLarge
        case .rejected(.queueFull): .queueFull
        case .rejected(.evicted): .evicted
        case .rejected(.shuttingDown): .shuttingDown
        case .rejected(.invalid): .invalid
        case .failed(.cancelled): .cancelled
        case .failed(.queueTimeout): .queueTimeout
        case .failed(.shutdown): .shutdown
        case .failed(.engineError): .engineError
        }
    }
}

extension Telemetry {
    var observer: SchedulerMetricsObserver {
        SchedulerMetricsObserver(registry: registry, recorder: recorder, sampler: sampler)
    }

    /// The scheduler runs: /v1/metrics reports its live stats with the recorder's totals and history.
    func attach(stats source: @escaping @Sendable () -> SchedulerStats) {
        let recorder = self.recorder
        observer.stateChanged(source())
        attach { window in
            let s = source()
            return V1MetricsReport(
                activeWorkers: s.running,
                waiting: WaitingCounts(low: s.queuedByPriority[.low] ?? 0, normal: s.queuedByPriority[.normal] ?? 0,
                                       high: s.queuedByPriority[.high] ?? 0, critical: s.queuedByPriority[.critical] ?? 0),
                availableCapacity: s.availableBlocks, totalCapacity: s.totalBlocks, batchSize: s.batchSize,
                totals: try recorder?.totals(), recorderDroppedTotal: recorder?.droppedCount ?? 0, windowSeconds: window,
                history: try recorder?.queueHistory(since: Date().timeIntervalSince1970 - window) ?? [],
                schedulerType: s.schedulerType, recorderEnabled: recorder != nil,
                counters: s.counters.byName, rejectedByReason: s.counters.rejectedByReason,
                prefixCache: PrefixCacheReport(
                    enabled: s.prefixCache.enabled, cachedBlocks: s.prefixCache.cachedBlocks,
                    queryTokens: s.prefixCache.queryTokens, hitTokens: s.prefixCache.hitTokens,
                    evictions: s.prefixCache.evictions),
                recorder: recorder?.health)
        }
    }
}
