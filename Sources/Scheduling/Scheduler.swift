// Valet's scheduler: costs each job in KV blocks, parks it by priority, and feeds one continuous-batching engine loop.
import Foundation
import Inference

public final class Scheduler: Sendable {
    /// The configuration in effect (clamped to the engine).
    public let config: SchedulerConfig
    let core: SchedulerCore
    private let engine: any StepEngine
    private let decoder: any TokenDecoding
    private let loopDone = DispatchSemaphore(value: 0)

    public convenience init(
        config: SchedulerConfig = SchedulerConfig(), engine: any StepEngine, decoder: any TokenDecoding,
        observer: (any SchedulerObserver)? = nil
    ) {
        self.init(config: config, engine: engine, decoder: decoder, observer: observer, clock: SystemClock())
    }

    init(config: SchedulerConfig, engine: any StepEngine, decoder: any TokenDecoding,
         observer: (any SchedulerObserver)?, clock: any SchedulerClock) {
        var resolved = config.resolved(for: engine)
        // Arrivals always pass through the lot (the loop admits), so a lot of 0 would refuse everything.
        resolved.maxQueue = Swift.max(1, resolved.maxQueue)
        self.config = resolved
        self.engine = engine
        self.decoder = decoder
        core = SchedulerCore(config: resolved, clock: clock, observer: observer)
    }

    deinit {
        _ = core.state.withLock { $0.beginShutdown(grace: 0, now: core.clock.monotonic()) }
        core.wakeup.signal()
    }

    /// Starts the engine loop thread (once). Jobs submitted before are parked and admitted when it starts.
    public func start() {
        guard core.state.withLock({ $0.startLoop() }) else { return }
        let core = self.core, engine = self.engine, decoder = self.decoder, done = loopDone
        let thread = Thread {
            var loop = EngineLoop(core: core, engine: engine, decoder: decoder)
            loop.run()
            done.signal()
        }
        thread.name = "valet-engine-loop"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Hands a job to the scheduler. A refused job (too large, lot full, shutting down, empty prompt) comes back as
    /// `.rejected` and `onEvent` is never called; an accepted one gets its events through `onEvent`, ending with
    /// exactly one terminal event. Events come from the engine loop's thread (or the thread that cancels); keep
    /// `onEvent` quick.
    @discardableResult
    public func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> Submission {
        let now = core.clock.monotonic()
        let prompt = request.promptTokens.count
        let ctx = config.ctxSize ?? Int.max
        let total = core.totalBlocks
        let bs = config.blockSize
        let maxTokens = Swift.max(0, Swift.min(request.maxTokens, ctx - prompt))
        let cost = (prompt + maxTokens + bs - 1) / bs
        var refusal: JobFailure?
        if prompt == 0 {
            refusal = .invalid("the prompt has no tokens")
        } else if prompt > ctx {
            refusal = .tooLarge(costBlocks: (prompt + Swift.max(0, request.maxTokens) + bs - 1) / bs,
                                capacityBlocks: Swift.min(total, ctx / bs))
        } else if cost > total {
            refusal = .tooLarge(costBlocks: cost, capacityBlocks: total)
        }
        let deadline = now + Swift.max(0, request.queueTimeout ?? config.queueTimeout)
        // Hashed here, on the submitting thread, so the engine loop only looks the chain up.
        var hashes: [BlockHash] = []
        var root: BlockHash?
        if config.prefixCache && refusal == nil {
            root = BlockHash.root(model: config.modelIdentity, salt: request.cacheSalt)
            BlockHash.extend(&hashes, tokens: request.promptTokens, blockSize: bs, root: root!)
        }
        let (job, arrival): (SchedulerJob, SchedulerState.Arrival) = core.state.withLock { s in
            var job = SchedulerJob(seq: s.takeSeq(), request: request, onEvent: onEvent, costBlocks: cost,
                                   maxTokens: maxTokens, enqueuedMono: now, enqueuedUnix: core.clock.unix())
            job.blockHashes = hashes
            job.hashRoot = root
            if let refusal { return (job, .refused(refusal)) }
            return (job, s.park(job, deadline: deadline, now: now))
        }
        switch arrival {
        case .refused(let failure):
            core.conclude(job, .refused(failure))
            core.publish()
            return .rejected(failure)
        case .parkedEvicting(let evicted, let retryAfter):
            core.conclude(evicted, .failed(.evicted(retryAfterSeconds: retryAfter)))
        case .parked:
            break
        }
        core.wakeup.signal()
        core.publish()
        return .accepted(JobHandle(id: request.id, seq: job.seq) { [weak core] seq in core?.abort(seq, .cancelled) })
    }

    public func stats() -> SchedulerStats { core.stats() }

    /// Seconds the engine loop has gone without a pass while work waits or runs; nil when it is idle. A step of the
    /// model takes milliseconds, so tens of seconds mean the loop is stuck.
    public func stalledSeconds() -> Double? {
        let now = core.clock.monotonic()
        return core.state.withLock { $0.stalledFor(now: now) }
    }

    /// Ends the grace period of a shutdown under way at once: what still runs ends with `.failed(.shuttingDown)`.
    public func endGrace() {
        core.state.withLock { $0.endGrace(now: core.clock.monotonic()) }
        core.wakeup.signal()
    }

    /// Stops admitting (new submits are rejected with `.shuttingDown`) and ends every parked job with
    /// `.failed(.shuttingDown)` at once, so a gateway can retry it elsewhere instead of it waiting out the grace;
    /// running jobs get `grace` seconds to finish, then what is left ends the same way. Returns when the loop has
    /// stopped.
    public func shutdown(grace: Double) {
        let loopRunning = core.state.withLock { $0.beginShutdown(grace: grace, now: core.clock.monotonic()) }
        for seq in core.state.withLock({ $0.parkedSeqs }) { core.abort(seq, .shuttingDown) }
        if loopRunning {
            core.wakeup.signal()
            loopDone.wait()
            loopDone.signal()  // let any other caller of shutdown through too
        } else {
            for seq in core.state.withLock({ $0.parkedSeqs }) { core.abort(seq, .shuttingDown) }
        }
    }
}
