// The engine loop's admission: from the lot into the running set, and room for priority work — a decode row lent
// by suspension (nothing recomputed) or blocks freed by preemption (recomputed later).
import Inference

extension EngineLoop {
    mutating func admit(now: Double) {
        let rows = config.maxBatch - running.activeRows
        guard rows > 0 else { return }
        let state = core.state, blockSize = config.blockSize
        let (jobs, resumed) = state.withLock { s in
            s.admit(freeRows: rows, now: now, blocks: &blocks, blockSize: blockSize)
        }
        for seq in resumed { resume(seq) }
        if jobs.isEmpty {
            // A job admitted and gone meanwhile may still have queued a copy: its source's pin must go.
            performCopies()
            if !resumed.isEmpty { publishState() }
            return
        }
        start(jobs, now: now)
    }

    /// A suspended sequence gets a decode row back and continues from its cache (its lot entry is already gone).
    private mutating func resume(_ seq: UInt64) {
        if let i = running.index(of: seq) { running[i].suspended = false }
    }

    /// While shutting down nothing is admitted, so suspended sequences take free rows directly and can finish in the
    /// grace period.
    mutating func resumeSuspendedForShutdown() {
        var rows = config.maxBatch - running.activeRows
        for i in running.indices where running[i].suspended && rows > 0 {
            running[i].suspended = false
            rows -= 1
            let seq = running[i].job.seq
            core.state.withLock { $0.unsuspend(seq) }
        }
    }

    /// A high or critical waiter that fits the free blocks but finds every decode row taken gets the row of the newest
    /// lowest-priority running sequence at once: that sequence is suspended, not preempted — it keeps its blocks and
    /// cache, so nothing is recomputed. Waiting `preemptAfter` first would only delay the high job: no work is lost.
    mutating func giveRowsToPriority(now: Double) -> Bool {
        var changed = false
        while running.activeRows >= config.maxBatch {
            let free = blocks.available
            guard let need = core.state.withLock({ $0.lot.rowCandidate(freeBlocks: free, now: now) }),
                  takeRow(below: need.priority, now: now)
            else { break }
            admitDirectly(need, now: now)
            changed = true
        }
        return changed
    }

    /// Makes sure a decode row is free, suspending the first victim below `priority` if needed.
    private mutating func takeRow(below priority: Priority, now: Double) -> Bool {
        if running.activeRows < config.maxBatch { return true }
        guard let victim = running.victims(below: priority, includingSuspended: false).first else { return false }
        running[victim].suspended = true
        blocks.abandonPending(running[victim].blocks)
        let job = running[victim].job
        core.state.withLock { $0.suspend(job, now: now) }
        core.observer?.jobSuspended(id: job.request.id, priority: job.request.priority)
        return true
    }

    /// Takes one waiter out of the lot and runs it now: the room was made for it, and left to the ordinary admission
    /// order an aged job could take it back.
    private mutating func admitDirectly(_ entry: Lot.Entry, now: Double) {
        let job = core.state.withLock { $0.take(entry, now: now) }
        if entry.holdsBlocks {
            resume(entry.seq)
            publishState()
        } else if let job {
            start([SchedulerState.Admission(job: job)], now: now)
        }
    }

    /// Puts admitted jobs in the running set with their blocks (taken here if admission did not take them), the
    /// cached prefix counted as already computed.
    private mutating func start(_ admissions: [SchedulerState.Admission], now: Double) {
        for admission in admissions {
            var job = admission.job
            var table = admission.table
            var hits = admission.hitBlocks
            if table == nil {
                let match = job.match(in: blocks, blockSize: config.blockSize)
                table = blocks.allocate(blocks: job.costBlocks, match: match, hashes: job.blockHashes)
                hits = match.hits.count
            }
            guard let table else {
                // Room was made against the available count, so this is a bookkeeping bug: end the job, don't lose it.
                core.state.withLock { $0.release(job.seq, wasSuspended: false) }
                core.conclude(job, .failed(.engine("KV block accounting mismatch")))
                continue
            }
            let seeded = hits < table.count ? blocks.seededRows(of: table[hits]) : 0
            let first = job.admittedMono == nil
            if first {
                job.admittedMono = now
                job.admittedUnix = core.clock.unix()
                let prompt = job.request.promptTokens
                job.generation = JobProgress(
                    tokens: prompt, sampler: Sampler(parameters: job.request.sampling, prompt: prompt),
                    text: TextStream(stops: job.request.stop), constraint: job.request.constraint)
                job.cachedTokens = hits * config.blockSize + seeded
                if blocks.cachingEnabled {
                    cacheQueryTokens += prompt.count
                    cacheHitTokens += job.cachedTokens
                }
            }
            running.add(job, blocks: table, cachedBlocks: hits, seededRows: seeded, blockSize: config.blockSize)
            if job.owesPromptScores && hits > 0 { takeCachedScores(running.indices.last!, blocks: hits) }
            if first {
                core.observer?.jobAdmitted(id: job.request.id, priority: job.request.priority,
                                           queueSeconds: now - job.enqueuedMono)
                job.onEvent(.admitted)
            }
        }
        performCopies()
        publishState()
    }

    /// A scoring job that starts from cached blocks reports their prompt positions from the scores kept with them.
    private mutating func takeCachedScores(_ i: Int, blocks hits: Int) {
        let request = running[i].job.request
        let n = request.logprobs ?? 0
        var scores = [PromptTokenLogprob?](repeating: nil, count: request.promptTokens.count)
        for b in 0..<hits {
            guard let kept = blocks.scores(of: running[i].blocks[b]) else { continue }
            for (k, score) in kept.positions.enumerated() {
                guard let score else { continue }
                let position = b * config.blockSize + k
                let token = request.promptTokens[position]
                scores[position] = PromptTokenLogprob(
                    token: TokenLogprob(token: token, bytes: decoder.bytes(of: token), logprob: score.logprob),
                    top: withBytes(Array(score.top.prefix(n))))
            }
        }
        running[i].promptLogprobs = scores
    }

    /// When a high/critical waiter has waited past `preemptAfter` and lower-priority running work holds the blocks it
    /// needs, frees the first victims (only as many as needed, and only if that suffices).
    mutating func preempt(now: Double) -> Bool {
        guard let need = core.state.withLock({ $0.lot.preemptionCandidate(now: now, preemptAfter: config.preemptAfter) })
        else { return false }
        var free = blocks.available
        // A missing row alone is `giveRowsToPriority`'s (no recompute needed); this frees blocks.
        if need.cost <= free { return false }
        var rows = config.maxBatch - running.activeRows
        let victims = running.victims(below: need.priority)
        let suspendable = victims.filter { !running[$0].suspended }.count
        var chosen: [Int] = []
        for i in victims {
            if need.cost <= free { break }
            chosen.append(i)
            // Blocks a victim shares with sequences that keep running free nothing.
            free = blocks.available(afterReleasing: chosen.map { running[$0].blocks })
            if !running[i].suspended { rows += 1 }
        }
        let rowLeft = rows > 0 || suspendable > chosen.filter { !running[$0].suspended }.count
        guard need.cost <= free && rowLeft else { return false }
        for i in chosen.sorted(by: >) { preemptOne(i, now: now) }
        // The freed room goes to the waiter it was freed for: left to the ordinary admission order, an aged victim
        // could take it back and be preempted again, forever.
        if takeRow(below: need.priority, now: now) { admitDirectly(need, now: now) }
        return true
    }

    private mutating func preemptOne(_ index: Int, now: Double) {
        var r = running.remove(at: index)
        // Its blocks stay cached, so the resumption finds most of its history there.
        cacheTail(of: r)
        blocks.release(r.blocks)
        r.job.preemptions += 1
        let job = r.job
        let (rows, m, c) = (running.activeRows, blocks, cacheStats)
        let pendingAbort: JobFailure? = core.state.withLock { s in
            s.update(running: rows, batchSize: s.batchSize, blocks: m, cache: c)
            return s.requeue(job, wasSuspended: r.suspended, now: now)
        }
        if let pendingAbort {
            core.conclude(job, .failed(pendingAbort))
        } else {
            core.observer?.jobPreempted(id: job.request.id, priority: job.request.priority)
        }
    }
}
