// The one engine loop (its own thread). Each pass: end what was aborted or timed out, admit and make room for
// priority work, then one step as plan → execute → apply (EngineLoop+Step.swift).
import Inference

struct EngineLoop {
    let core: SchedulerCore
    let engine: any StepEngine
    let decoder: any TokenDecoding
    let policy: any AdmissionPolicy
    var config: SchedulerConfig { core.config }
    var blocks: KVBlockManager
    var running = RunningSet()
    var lastBatch = 0
    /// Prompt tokens looked up and found at first admissions (tokens, as vLLM counts them).
    var cacheQueryTokens = 0
    var cacheHitTokens = 0

    init(core: SchedulerCore, engine: any StepEngine, decoder: any TokenDecoding) {
        self.core = core
        self.engine = engine
        self.decoder = decoder
        policy = core.config.policy
        blocks = KVBlockManager(total: core.totalBlocks, caching: core.config.prefixCache,
                                blockSize: core.config.blockSize)
    }

    mutating func run() {
        while true {
            let now = core.clock.monotonic()
            let (aborts, shutting, deadline) = core.state.withLock { s in
                s.beat(now)
                return (s.takeAborts(), s.shuttingDown, s.graceDeadline)
            }
            for (seq, failure) in aborts {
                if let i = running.index(of: seq) { end(i, .failed(failure)) }
            }
            for e in core.state.withLock({ $0.lot.expired(now: now) }) {
                core.abort(e.seq, .queueTimeout(waitedSeconds: now - e.enqueuedAt))
            }

            if shutting {
                resumeSuspendedForShutdown()
                if running.isEmpty || now >= (deadline ?? now) {
                    finishShutdown()
                    return
                }
            } else {
                admit(now: now)
                if giveRowsToPriority(now: now) { continue }
                if preempt(now: now) { continue }
            }
            if running.activeRows == 0 {
                lastBatch = 0
                publishState()
                let lotEmpty = core.state.withLock { $0.lot.isEmpty }
                // Idle with parked work happens only while shutting down (or for one pass after a suspended sequence
                // lost its last row); poll then, sleep otherwise.
                core.wakeup.wait(timeout: lotEmpty && !shutting ? nil : 0.05)
                continue
            }
            step()
            publishState()
        }
    }

    /// The grace period is over (or nothing runs): everything left ends as shut down.
    private mutating func finishShutdown() {
        while let last = running.indices.last { end(last, .failed(.shuttingDown)) }
        for seq in core.state.withLock({ $0.parkedSeqs }) { core.abort(seq, .shuttingDown) }
        lastBatch = 0
        publishState()
    }

    var cacheStats: PrefixCacheStats {
        PrefixCacheStats(enabled: blocks.cachingEnabled, cachedBlocks: blocks.cachedEvictable,
                         queryTokens: cacheQueryTokens, hitTokens: cacheHitTokens, evictions: blocks.evictions)
    }

    mutating func publishState() {
        let (r, b, m, c) = (running.activeRows, lastBatch, blocks, cacheStats)
        core.state.withLock { $0.update(running: r, batchSize: b, blocks: m, cache: c) }
        core.publish()
    }

    /// A running job ends: blocks back to the manager (exactly once, here; full ones stay cached), out of the active
    /// set, then concluded.
    mutating func end(_ index: Int, _ outcome: SchedulerCore.Outcome) {
        let r = running.remove(at: index)
        cacheTail(of: r)
        blocks.release(r.blocks)
        let (rows, m, c) = (running.activeRows, blocks, cacheStats)
        core.state.withLock { s in
            s.release(r.job.seq, wasSuspended: r.suspended)
            s.update(running: rows, batchSize: s.batchSize, blocks: m, cache: c)
        }
        core.conclude(r.job, outcome, matchedStop: r.job.generation?.text.matchedStop)
    }

    /// A leaving sequence's last, partly filled block stays cached as a seed: the next prompt that repeats this one
    /// (or continues the conversation) copies its rows instead of recomputing them. Full blocks are indexed already.
    mutating func cacheTail(of r: RunningSet.Sequence) {
        guard let root = r.job.hashRoot, let tokens = r.job.generation?.tokens else { return }
        let size = config.blockSize, k = r.cached / size
        guard r.cached % size > 0, k * size >= r.shared, k < r.blocks.count, r.job.blockHashes.count >= k else { return }
        let parent = k == 0 ? root : r.job.blockHashes[k - 1]
        let rows = tokens[(k * size)..<r.cached]
        blocks.register(r.blocks[k], as: parent.child(rows), parent: parent, tokens: rows)
    }

    /// Performs the row copies admissions queued, then lets go of their sources.
    mutating func performCopies() {
        for c in blocks.takeCopies() {
            engine.copyRows(from: c.source, to: c.destination, tokens: c.tokens)
            blocks.release([c.source])
        }
    }
}
