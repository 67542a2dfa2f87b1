// Valet's scheduler: costs each job in KV blocks, parks it by priority, and feeds one continuous-batching engine loop.
import Inference
import Foundation

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
        core.state.withLock { s in
            if !s.shuttingDown {
                s.shuttingDown = true
                s.graceDeadline = core.clock.monotonic()
            }
        }
        core.wakeup.signal()
    }

    /// Blocks one job costs: prompt plus max_tokens (capped by the context), in blocks.
    public func costBlocks(promptTokens: Int, maxTokens: Int) -> Int {
        let ctx = config.ctxSize ?? promptTokens + maxTokens
        let tokens = promptTokens + Swift.max(0, Swift.min(maxTokens, ctx - promptTokens))
        return (tokens + config.blockSize - 1) / config.blockSize
    }

    /// Starts the engine loop thread (once). Jobs submitted before are parked and admitted when it starts.
    public func start() {
        let go = core.state.withLock { s -> Bool in
            guard !s.loopStarted && !s.shuttingDown else { return false }
            s.loopStarted = true
            return true
        }
        guard go else { return }
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

    /// Hands a job to the scheduler. Every job gets exactly one terminal event (`.finished` or `.failed`); a
    /// rejection (too large, lot full, shutting down, empty prompt) is delivered synchronously, before this returns.
    /// Events come from the engine loop's thread (or the thread that cancels / submits); keep `onEvent` quick.
    @discardableResult
    public func submit(_ request: GenerationRequest, onEvent: @escaping @Sendable (JobEvent) -> Void) -> JobHandle {
        let now = core.clock.monotonic()
        let prompt = request.promptTokens.count
        let ctx = config.ctxSize ?? Int.max
        let total = core.totalBlocks
        let bs = config.blockSize
        let maxTokens = Swift.max(0, Swift.min(request.maxTokens, ctx - prompt))
        let cost = (prompt + maxTokens + bs - 1) / bs
        var rejection: (JobFailure, String)?
        if prompt == 0 {
            rejection = (.engine("the prompt has no tokens"), "invalid")
        } else if prompt > ctx {
            rejection = (.tooLarge(costBlocks: (prompt + Swift.max(0, request.maxTokens) + bs - 1) / bs,
                                   capacityBlocks: Swift.min(total, ctx / bs)), "too_large")
        } else if cost > total {
            rejection = (.tooLarge(costBlocks: cost, capacityBlocks: total), "too_large")
        }

        let cancel: @Sendable (UInt64) -> Void = { [weak core] seq in core?.abort(seq, .cancelled) }
        let (seq, evicted, refused): (UInt64, SchedulerJob?, (JobFailure, String)?) = core.state.withLock { s in
            let seq = s.nextSeq
            s.nextSeq += 1
            let job = SchedulerJob(seq: seq, request: request, onEvent: onEvent, costBlocks: cost, maxTokens: maxTokens,
                          enqueuedMono: now, enqueuedUnix: core.clock.unix())
            if let rejection { return (seq, nil, rejection) }
            if s.shuttingDown { return (seq, nil, (.shuttingDown, "shutting_down")) }
            let entry = ParkingLot.Entry(seq: seq, cost: cost, priority: request.priority, enqueuedAt: now,
                                         deadline: now + Swift.max(0, request.queueTimeout ?? config.queueTimeout))
            switch s.lot.offer(entry, now: now) {
            case .parked:
                s.parked[seq] = job
                s.clientIDs[request.id] = seq
                return (seq, nil, nil)
            case .parkedEvicting(let victim):
                s.parked[seq] = job
                s.clientIDs[request.id] = seq
                return (seq, s.parked.removeValue(forKey: victim.seq), nil)
            case .full:
                let retry = s.drain.retryAfter(ahead: s.lot.ahead(of: request.priority, now: now), now: now)
                return (seq, nil, (.queueFull(retryAfterSeconds: retry), "queue_full"))
            }
        }
        let handle = JobHandle(id: request.id, seq: seq, cancel: cancel)
        if let (failure, reason) = refused {
            let job = SchedulerJob(seq: seq, request: request, onEvent: onEvent, costBlocks: cost, maxTokens: maxTokens,
                          enqueuedMono: now, enqueuedUnix: core.clock.unix())
            core.conclude(job, .rejected(failure, reason: reason))
        }
        if let evicted {
            let retry = core.state.withLock { s in
                s.drain.retryAfter(ahead: s.lot.ahead(of: evicted.request.priority, now: now), now: now)
            }
            core.conclude(evicted, .failed(.evicted(retryAfterSeconds: retry)))
        }
        if refused == nil { core.wakeup.signal() }
        core.publish()
        return handle
    }

    /// Cancels the job with this request id (client disconnect); harmless if it already ended.
    /// A parked job's `.failed(.cancelled)` is delivered synchronously on the calling thread (a running one's from
    /// the engine loop, between steps), so do not call this while holding a lock that `onEvent` takes.
    public func cancel(id: String) {
        guard let seq = core.state.withLock({ $0.clientIDs[id] }) else { return }
        core.abort(seq, .cancelled)
    }

    public func stats() -> SchedulerStats { core.stats() }

    /// Stops admitting (new submits get `.failed(.shuttingDown)`); running jobs get `grace` seconds to finish, then
    /// every job still parked or running ends with `.failed(.shuttingDown)`. Returns when the loop has stopped.
    public func shutdown(grace: Double) {
        let loopRunning = core.state.withLock { s -> Bool in
            if !s.shuttingDown {
                s.shuttingDown = true
                s.graceDeadline = core.clock.monotonic() + Swift.max(0, grace)
            }
            return s.loopStarted
        }
        if loopRunning {
            core.wakeup.signal()
            loopDone.wait()
            loopDone.signal()  // let any other caller of shutdown through too
        } else {
            let parked = core.state.withLock { $0.parked.keys.sorted() }
            for seq in parked { core.abort(seq, .shuttingDown) }
        }
    }
}
