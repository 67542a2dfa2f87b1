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
            id: job.id, model: job.model, priority: job.priority.description, status: SchedulerMetricsObserver.status(job),
            finishReason: job.finishReason?.rawValue, promptTokens: job.promptTokens,
            completionTokens: job.completionTokens, costBlocks: job.costBlocks, enqueuedAt: job.enqueuedAt,
            admittedAt: job.admittedAt, firstTokenAt: job.firstTokenAt, finishedAt: job.finishedAt,
            error: job.failure.map { APIError.from($0).message })
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
            capacityBlocks: s.totalBlocks, usedBlocks: s.blocksInUse, batchSize: s.batchSize)
        sampler?.observe(queued: s.queued, running: s.running, usedBlocks: s.blocksInUse, totalBlocks: s.totalBlocks)
    }

    static func status(_ job: JobSnapshot) -> JobRecord.Status {
        switch job.status {
        case .stopped, .length: return .completed
        case .cancelled: return .cancelled
        case .timedOut: return .queueTimeout
        case .evicted: return .evicted
        case .shutdown: return .shutdown
        case .failed: return .engineError
        case .rejected:
            switch job.failure {
            case .tooLarge?: return .tooLarge
            case .queueFull?: return .queueFull
            case .shuttingDown?: return .shutdown
            // Too large or otherwise unservable: a 400-class refusal.
            default: return .tooLarge
            }
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
                counters: s.counters.byName, rejectedByReason: s.counters.rejectedByReason)
        }
    }
}
