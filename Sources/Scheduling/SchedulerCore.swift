// State shared between the submitting threads and the engine loop, and the single way every job ends.
import Inference

struct SchedulerState: Sendable {
    var lot: ParkingLot
    /// Jobs in the lot (new or preempted), by seq.
    var parked: [UInt64: SchedulerJob] = [:]
    /// Jobs the engine loop holds (admitted, not yet ended).
    var active: Set<UInt64> = []
    /// Abort requests for active jobs, handled by the loop between steps.
    var aborts: [UInt64: JobFailure] = [:]
    var clientIDs: [String: UInt64] = [:]
    var nextSeq: UInt64 = 1
    var drain = DrainRate()
    var counters = SchedulerCounters()
    var running = 0
    var batchSize = 0
    var availableBlocks: Int
    var shuttingDown = false
    var graceDeadline: Double?
    var loopStarted = false
    var loopExited = false
    var lastPublished: SchedulerStats?
    /// Block releases that found the block already free (must stay 0; tests check it).
    var doubleReleases = 0
}

final class SchedulerCore: Sendable {
    let config: SchedulerConfig
    let clock: any SchedulerClock
    let observer: (any SchedulerObserver)?
    let state: SchedulerLock<SchedulerState>
    let wakeup = LoopWakeup()

    init(config: SchedulerConfig, clock: any SchedulerClock, observer: (any SchedulerObserver)?) {
        self.config = config
        self.clock = clock
        self.observer = observer
        state = SchedulerLock(SchedulerState(
            lot: ParkingLot(kind: config.kind, maxQueue: config.maxQueue,
                            agingSeconds: config.agingSeconds, maxOvertakes: config.maxOvertakes),
            availableBlocks: config.totalBlocks ?? 0))
    }

    var totalBlocks: Int { config.totalBlocks ?? 0 }

    func stats() -> SchedulerStats {
        state.withLock { Self.stats(of: $0, config: config) }
    }

    static func stats(of s: SchedulerState, config: SchedulerConfig) -> SchedulerStats {
        SchedulerStats(
            schedulerType: config.kind.rawValue, running: s.running, queued: s.lot.count,
            queuedByPriority: s.lot.countByPriority(), totalBlocks: config.totalBlocks ?? 0,
            availableBlocks: s.availableBlocks, blockSize: config.blockSize, batchSize: s.batchSize,
            counters: s.counters)
    }

    /// Tells the observer about changed stats (a hint; `stats()` is the truth).
    func publish() {
        guard let observer else { return }
        let changed: SchedulerStats? = state.withLock { s in
            let now = Self.stats(of: s, config: config)
            guard now != s.lastPublished else { return nil }
            s.lastPublished = now
            return now
        }
        if let changed { observer.stateChanged(changed) }
    }

    /// THE cancellation path (disconnect, timeout, eviction victim aside, shutdown): a parked job leaves the lot and
    /// ends here at once; an admitted one is flagged and the loop aborts it between steps, releasing its blocks.
    func abort(_ seq: UInt64, _ failure: JobFailure) {
        let parked: SchedulerJob? = state.withLock { s in
            if let job = s.parked.removeValue(forKey: seq) {
                s.lot.remove(seq)
                return job
            }
            if s.active.contains(seq) && s.aborts[seq] == nil { s.aborts[seq] = failure }
            return nil
        }
        if let parked {
            conclude(parked, .failed(failure))
            publish()
        } else {
            wakeup.signal()
        }
    }

    /// Ends a job exactly once: counters, observer snapshot, then the terminal event. The caller has already taken the
    /// job out of the lot or the loop and released its blocks.
    func conclude(_ job: SchedulerJob, _ outcome: JobOutcome, matchedStop: String? = nil) {
        let nowMono = clock.monotonic()
        let nowUnix = clock.unix()
        let status: JobStatus
        var finishReason: FinishReason?
        var failure: JobFailure?
        var rejectReason: String?
        switch outcome {
        case .finished(let reason):
            finishReason = reason
            status = reason == .stop ? .stopped : .length
        case .rejected(let f, let reason):
            failure = f
            rejectReason = reason
            status = .rejected
        case .failed(let f):
            failure = f
            switch f {
            case .cancelled: status = .cancelled
            case .queueTimeout: status = .timedOut
            case .evicted: status = .evicted
            case .shuttingDown: status = .shutdown
            case .tooLarge, .queueFull, .engine: status = .failed
            }
        }
        state.withLock { s in
            switch status {
            case .stopped, .length: s.counters.completed += 1
            case .cancelled: s.counters.cancelled += 1
            case .timedOut: s.counters.timedOut += 1
            case .evicted: s.counters.evicted += 1
            case .shutdown: s.counters.shutDown += 1
            case .failed: s.counters.failed += 1
            case .rejected:
                switch rejectReason {
                case "too_large": s.counters.rejectedTooLarge += 1
                case "queue_full": s.counters.rejectedQueueFull += 1
                case "shutting_down": s.counters.rejectedShuttingDown += 1
                default: s.counters.rejectedInvalid += 1
                }
            }
            if s.clientIDs[job.request.id] == job.seq { s.clientIDs.removeValue(forKey: job.request.id) }
        }
        let generated = job.generation?.generated ?? 0
        if let observer {
            observer.jobFinished(JobSnapshot(
                id: job.request.id, model: job.request.model, priority: job.request.priority, status: status,
                finishReason: finishReason, failure: failure, rejectReason: rejectReason,
                matchedStop: matchedStop,
                promptTokens: job.request.promptTokens.count, completionTokens: generated,
                costBlocks: job.costBlocks, preemptions: job.preemptions,
                enqueuedAt: job.enqueuedUnix, admittedAt: job.admittedUnix, firstTokenAt: job.firstTokenUnix,
                finishedAt: nowUnix,
                queueSeconds: (job.admittedMono ?? nowMono) - job.enqueuedMono,
                prefillSeconds: job.prefillDoneMono.map { $0 - (job.admittedMono ?? $0) },
                decodeSeconds: job.prefillDoneMono.map { nowMono - $0 },
                ttftSeconds: job.firstTokenMono.map { $0 - job.enqueuedMono },
                totalSeconds: nowMono - job.enqueuedMono))
        }
        switch outcome {
        case .finished(let reason):
            job.onEvent(.finished(reason, Usage(promptTokens: job.request.promptTokens.count,
                                                completionTokens: generated)))
        case .failed(let f), .rejected(let f, _):
            job.onEvent(.failed(f))
        }
    }
}
