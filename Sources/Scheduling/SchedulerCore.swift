// What the scheduler's threads share: the locked state, the clock, the observer, the loop's wake-up, and the single
// way every job ends.
import Inference

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
        state = SchedulerLock(SchedulerState(lot: Lot(policy: config.policy, maxQueue: config.maxQueue),
                                             availableBlocks: config.totalBlocks ?? 0, prefixCache: config.prefixCache))
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
            counters: s.counters, prefixCache: s.prefixCache)
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

    /// THE cancellation path (disconnect, timeout, shutdown): a parked job leaves the lot and ends here at once; an
    /// admitted one is flagged and the loop aborts it between steps, releasing its blocks.
    func abort(_ seq: UInt64, _ failure: JobFailure) {
        if let parked = state.withLock({ $0.abort(seq, failure) }) {
            conclude(parked, .failed(failure))
            publish()
        } else {
            wakeup.signal()
        }
    }

    /// How a job is concluded: its end and what its client hears.
    enum Outcome: Sendable {
        case finished(FinishReason)
        /// Ended after it was accepted; the client gets `.failed`.
        case failed(JobFailure)
        /// Refused at submit; the client hears it from `submit`'s return value, not from an event.
        case refused(JobFailure)

        var end: JobEnd {
            switch self {
            case .finished(let r): .finished(r)
            case .failed(let f): JobEnd(f, accepted: true)
            case .refused(let f): JobEnd(f, accepted: false)
            }
        }
    }

    /// Ends a job exactly once: the count, the observer's snapshot, then the terminal event. The caller has already
    /// taken the job out of the lot or the loop and released its blocks.
    func conclude(_ job: SchedulerJob, _ outcome: Outcome, matchedStop: String? = nil) {
        let nowMono = clock.monotonic()
        let end = outcome.end
        state.withLock { $0.count(end) }
        let generated = job.generation?.generated ?? 0
        var failure: JobFailure?
        switch outcome {
        case .failed(let f), .refused(let f): failure = f
        case .finished: break
        }
        observer?.jobFinished(JobSnapshot(
            id: job.request.id, model: job.request.model, priority: job.request.priority, kind: job.request.kind,
            constraint: job.request.constraintKind, end: end,
            failure: failure, matchedStop: matchedStop,
            promptTokens: job.request.promptTokens.count, completionTokens: generated,
            cachedTokens: job.cachedTokens, costBlocks: job.costBlocks - job.cachedTokens / config.blockSize,
            preemptions: job.preemptions,
            enqueuedAt: job.enqueuedUnix, admittedAt: job.admittedUnix, firstTokenAt: job.firstTokenUnix,
            finishedAt: clock.unix(),
            queueSeconds: (job.admittedMono ?? nowMono) - job.enqueuedMono,
            prefillSeconds: job.prefillDoneMono.map { $0 - (job.admittedMono ?? $0) },
            decodeSeconds: job.prefillDoneMono.map { nowMono - $0 },
            ttftSeconds: job.firstTokenMono.map { $0 - job.enqueuedMono },
            totalSeconds: nowMono - job.enqueuedMono))
        switch outcome {
        case .finished(let reason):
            job.onEvent(.finished(reason, Usage(promptTokens: job.request.promptTokens.count,
                                                completionTokens: generated, cachedTokens: job.cachedTokens)))
        case .failed(let f):
            job.onEvent(.failed(f))
        case .refused:
            break
        }
    }
}
