// The one engine loop (its own thread): admits from the lot, preempts for waiting priority work, and runs batched
// steps — a decode token for every running sequence plus prompt chunks — then samples, detokenizes and streams.
import Inference

struct EngineLoop {
    private struct Running {
        var job: SchedulerJob
        let blocks: [Int32]
        /// Tokens of `job.generation.tokens` already in this sequence's KV blocks.
        var cached = 0
        let order: UInt64
        var promptLogprobs: [PromptTokenLogprob?]?
        /// Gave its decode row to higher-priority work; keeps its blocks and cache, waits in the lot for a row.
        var suspended = false
    }

    let core: SchedulerCore
    let engine: any StepEngine
    let decoder: any TokenDecoding
    private var config: SchedulerConfig { core.config }
    private var allocator: BlockAllocator
    private var running: [Running] = []
    private var nextOrder: UInt64 = 0
    private var lastBatch = 0
    /// Sequences holding a decode row (running and not suspended); at most `maxBatch`.
    private var activeRows: Int { running.reduce(0) { $0 + ($1.suspended ? 0 : 1) } }

    init(core: SchedulerCore, engine: any StepEngine, decoder: any TokenDecoding) {
        self.core = core
        self.engine = engine
        self.decoder = decoder
        allocator = BlockAllocator(total: core.totalBlocks)
    }

    mutating func run() {
        while true {
            let now = core.clock.monotonic()
            let (aborts, shutting, deadline) = core.state.withLock { s in
                let a = s.aborts
                s.aborts = [:]
                return (a, s.shuttingDown, s.graceDeadline)
            }
            for (seq, failure) in aborts.sorted(by: { $0.key < $1.key }) {
                if let i = running.firstIndex(where: { $0.job.seq == seq }) { end(i, .failed(failure)) }
            }
            let expired = core.state.withLock { $0.lot.expired(now: now) }
            for e in expired { core.abort(e.seq, .queueTimeout(waitedSeconds: now - e.enqueuedAt)) }

            if shutting {
                resumeSuspendedForShutdown()
                if running.isEmpty || now >= (deadline ?? now) {
                    while let last = running.indices.last { end(last, .failed(.shuttingDown)) }
                    let parked = core.state.withLock { $0.parked.keys.sorted() }
                    for seq in parked { core.abort(seq, .shuttingDown) }
                    let d = allocator.doubleReleases
                    let a = allocator.available
                    core.state.withLock { s in
                        s.doubleReleases = d
                        s.availableBlocks = a
                        s.loopExited = true
                        s.running = 0
                        s.batchSize = 0
                    }
                    core.publish()
                    return
                }
            } else {
                admit(now: now)
                if giveRowsToPriority(now: now) { continue }
                if preempt(now: now) { continue }
            }
            if activeRows == 0 {
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

    private func publishState() {
        let (r, b, a, d) = (activeRows, lastBatch, allocator.available, allocator.doubleReleases)
        core.state.withLock { s in
            s.doubleReleases = d
            s.running = r
            s.batchSize = b
            s.availableBlocks = a
        }
        core.publish()
    }

    // MARK: admission and preemption

    private mutating func admit(now: Double) {
        let free = allocator.available
        let slots = config.maxBatch - activeRows
        guard slots > 0 else { return }
        var resumed: [UInt64] = []
        let jobs: [SchedulerJob] = core.state.withLock { s in
            let entries = s.lot.admit(freeBlocks: free, freeSlots: slots, now: now)
            var out: [SchedulerJob] = []
            for e in entries {
                if e.holdsBlocks {
                    resumed.append(e.seq)
                    continue
                }
                guard let job = s.parked.removeValue(forKey: e.seq) else { continue }
                s.active.insert(e.seq)
                if job.admittedMono == nil {
                    s.counters.admitted += 1
                    s.drain.recordAdmission(at: now)
                }
                out.append(job)
            }
            return out
        }
        for seq in resumed { resume(seq) }
        guard !jobs.isEmpty else {
            if !resumed.isEmpty { publishState() }
            return
        }
        start(jobs, now: now)
    }

    /// A suspended sequence gets a decode row back and continues from its cache (its lot entry is already gone).
    private mutating func resume(_ seq: UInt64) {
        guard let i = running.firstIndex(where: { $0.job.seq == seq }) else { return }
        running[i].suspended = false
    }

    /// While shutting down nothing is admitted, so suspended sequences take free rows directly and can finish in the
    /// grace period.
    private mutating func resumeSuspendedForShutdown() {
        var rows = config.maxBatch - activeRows
        for i in running.indices where running[i].suspended && rows > 0 {
            running[i].suspended = false
            rows -= 1
            let seq = running[i].job.seq
            core.state.withLock { _ = $0.lot.remove(seq) }
        }
    }

    /// A high or critical waiter that fits the free blocks but finds every decode row taken gets the row of the newest
    /// lowest-priority running sequence at once: that sequence is suspended, not preempted — it keeps its blocks and
    /// cache, so nothing is recomputed, and waits in the lot at the head of its class for the next free row.
    /// Waiting `preemptAfter` first would only delay the high job: no work is thrown away.
    private mutating func giveRowsToPriority(now: Double) -> Bool {
        guard config.kind == .parkingLot else { return false }
        var changed = false
        while activeRows >= config.maxBatch {
            let free = allocator.available
            guard let need = core.state.withLock({ $0.lot.rowCandidate(freeBlocks: free, now: now) }),
                  takeRow(below: need.priority, now: now)
            else { break }
            admitDirectly(need, now: now)
            changed = true
        }
        return changed
    }

    /// Makes sure a decode row is free, suspending the newest lowest-priority sequence below `priority` if needed.
    private mutating func takeRow(below priority: Priority, now: Double) -> Bool {
        if activeRows < config.maxBatch { return true }
        let victim = running.indices
            .filter { !running[$0].suspended && running[$0].job.request.priority < priority }
            .min { a, b in
                let pa = running[a].job.request.priority, pb = running[b].job.request.priority
                return pa != pb ? pa < pb : running[a].order > running[b].order
            }
        guard let victim else { return false }
        running[victim].suspended = true
        let job = running[victim].job
        core.state.withLock { s in
            s.lot.suspend(seq: job.seq, priority: job.request.priority, enqueuedAt: job.enqueuedMono, now: now)
            s.counters.suspended += 1
        }
        core.observer?.jobSuspended(id: job.request.id, priority: job.request.priority)
        return true
    }

    /// Takes one waiter out of the lot and runs it now (the room was made for it: left to the ordinary admission
    /// order, an aged job could take it back).
    private mutating func admitDirectly(_ entry: ParkingLot.Entry, now: Double) {
        if entry.holdsBlocks {
            core.state.withLock { _ = $0.lot.remove(entry.seq) }
            resume(entry.seq)
            publishState()
            return
        }
        let job: SchedulerJob? = core.state.withLock { s in
            guard s.lot.remove(entry.seq) != nil, let job = s.parked.removeValue(forKey: entry.seq) else { return nil }
            s.active.insert(entry.seq)
            if job.admittedMono == nil {
                s.counters.admitted += 1
                s.drain.recordAdmission(at: now)
            }
            return job
        }
        if let job { start([job], now: now) }
    }

    /// Gives admitted jobs their blocks and puts them in the running set.
    private mutating func start(_ jobs: [SchedulerJob], now: Double) {
        for var job in jobs {
            guard let blocks = allocator.allocate(job.costBlocks) else {
                // Cannot happen (the lot admitted against the free count); end it rather than lose it.
                endUnadmitted(job, .failed(.engine("KV block accounting mismatch")))
                continue
            }
            let first = job.admittedMono == nil
            if first {
                job.admittedMono = now
                job.admittedUnix = core.clock.unix()
                let prompt = job.request.promptTokens
                job.generation = JobProgress(
                    tokens: prompt, sampler: Sampler(parameters: job.request.sampling, prompt: prompt),
                    text: TextStream(stops: job.request.stop))
            }
            running.append(Running(job: job, blocks: blocks, order: nextOrder))
            nextOrder += 1
            if first {
                core.observer?.jobAdmitted(id: job.request.id, priority: job.request.priority,
                                           queueSeconds: now - job.enqueuedMono)
                job.onEvent(.admitted)
            }
        }
        publishState()
    }

    /// When a high/critical waiter has waited past `preemptAfter` and lower-priority running work holds what it
    /// needs, frees the newest lowest-priority sequences (only as many as needed, and only if that suffices).
    private mutating func preempt(now: Double) -> Bool {
        guard config.kind == .parkingLot,
              let need = core.state.withLock({ $0.lot.preemptionCandidate(now: now, preemptAfter: config.preemptAfter) })
        else { return false }
        var free = allocator.available
        var rows = config.maxBatch - activeRows
        // A missing row alone is `giveRowsToPriority`'s (no recompute needed); this frees blocks.
        if need.cost <= free { return false }
        let victims = running.indices
            .filter { running[$0].job.request.priority < need.priority }
            .sorted { a, b in
                let pa = running[a].job.request.priority, pb = running[b].job.request.priority
                return pa != pb ? pa < pb : running[a].order > running[b].order
            }
        let suspendable = victims.filter { !running[$0].suspended }.count
        var chosen: [Int] = []
        for i in victims {
            if need.cost <= free { break }
            chosen.append(i)
            free += running[i].blocks.count
            if !running[i].suspended { rows += 1 }
        }
        let rowLeft = rows > 0 || suspendable > chosen.filter { !running[$0].suspended }.count
        guard need.cost <= free && rowLeft else { return false }
        for i in chosen.sorted(by: >) { preemptOne(i, now: now) }
        // The freed room goes to the waiter it was freed for, directly: left to the ordinary admission order, an aged
        // victim could take it back and be preempted again, forever.
        if takeRow(below: need.priority, now: now) { admitDirectly(need, now: now) }
        return true
    }

    private mutating func preemptOne(_ index: Int, now: Double) {
        var r = running.remove(at: index)
        allocator.release(r.blocks)
        r.job.preemptions += 1
        let job = r.job
        let entry = ParkingLot.Entry(seq: job.seq, cost: job.costBlocks, priority: job.request.priority,
                                     enqueuedAt: job.enqueuedMono, deadline: nil)
        let available = allocator.available
        let count = activeRows
        let pendingAbort: JobFailure? = core.state.withLock { s in
            s.active.remove(job.seq)
            s.counters.preempted += 1
            s.availableBlocks = available
            s.running = count
            // A suspended victim's row-only entry gives way to a full-cost one.
            if r.suspended { s.lot.remove(job.seq) }
            if let f = s.aborts.removeValue(forKey: job.seq) { return f }
            s.lot.requeue(entry, now: now)
            s.parked[job.seq] = job
            return nil
        }
        if let pendingAbort {
            core.conclude(job, .failed(pendingAbort))
        } else {
            core.observer?.jobPreempted(id: job.request.id, priority: job.request.priority)
        }
    }

    // MARK: the step

    private mutating func step() {
        var batch: [StepSequence] = []
        var owners: [Int] = []
        var wantsPromptLogprobs: [Bool] = []
        var budget = config.prefillChunk
        // Decode rows all run; the prompt budget goes to the highest class first. While a high or critical prompt is
        // being prefilled, lower classes' prompts wait: the step ends (and its first token streams) sooner.
        var rows = running.indices.filter { !running[$0].suspended }
        if config.kind == .parkingLot {
            rows.sort { a, b in
                let pa = running[a].job.request.priority, pb = running[b].job.request.priority
                return pa != pb ? pa > pb : running[a].order < running[b].order
            }
        }
        var prefillClass: Priority?
        for i in rows {
            let gen = running[i].job.generation!
            let cached = running[i].cached
            let remaining = gen.tokens.count - cached
            guard remaining > 0 else { continue }
            var n = 1
            if remaining > 1 {
                guard budget > 0 else { continue }
                let priority = running[i].job.request.priority
                if config.kind == .parkingLot, let c = prefillClass, c >= .high, priority < c { continue }
                prefillClass = prefillClass ?? priority
                n = Swift.min(remaining, budget)
                budget -= n
            }
            let scoring = running[i].job.request.promptLogprobs && !gen.promptLogprobsSent
            if scoring && running[i].promptLogprobs == nil {
                running[i].promptLogprobs = Array(repeating: nil, count: running[i].job.request.promptTokens.count)
            }
            let reachesEnd = cached + n == gen.tokens.count
            let rows: LogitRows = scoring ? .all : (reachesEnd && running[i].job.maxTokens > 0 ? .last : .none)
            batch.append(StepSequence(blockTable: running[i].blocks, position: cached,
                                      tokens: Array(gen.tokens[cached..<(cached + n)]), logits: rows))
            owners.append(i)
            wantsPromptLogprobs.append(scoring)
        }
        guard !batch.isEmpty else { return }
        lastBatch = batch.count

        var samples: [Int: SampledToken] = [:]
        let started = core.clock.monotonic()
        do {
            try engine.step(batch) { b, t, row in
                let i = owners[b]
                let position = running[i].cached + t
                let prompt = running[i].job.request.promptTokens
                if wantsPromptLogprobs[b] && position + 1 < prompt.count {
                    let target = prompt[position + 1]
                    let (logprob, top) = Sampler.score(target, in: row, top: running[i].job.request.logprobs ?? 0)
                    let entry = PromptTokenLogprob(
                        token: TokenLogprob(token: target, bytes: decoder.bytes(of: target), logprob: logprob),
                        top: withBytes(top))
                    running[i].promptLogprobs?[position + 1] = entry
                }
                if position == running[i].job.generation!.tokens.count - 1 && running[i].job.maxTokens > 0 {
                    let topN = running[i].job.request.logprobs
                    samples[b] = running[i].job.generation!.sampler.sample(row, topLogprobs: topN)
                }
            }
        } catch {
            let message = "engine step failed: \(error)"
            for i in owners.sorted(by: >) { end(i, .failed(.engine(message))) }
            return
        }
        let now = core.clock.monotonic()
        core.observer?.stepFinished(batchSize: batch.count, tokens: batch.reduce(0) { $0 + $1.tokens.count },
                                    seconds: now - started)

        var endings: [(index: Int, outcome: JobOutcome)] = []
        for (b, fed) in batch.enumerated() {
            let i = owners[b]
            running[i].cached += fed.tokens.count
            if running[i].cached == running[i].job.generation!.tokens.count {
                if running[i].job.prefillDoneMono == nil { running[i].job.prefillDoneMono = now }
                if wantsPromptLogprobs[b], let scores = running[i].promptLogprobs {
                    running[i].job.generation!.promptLogprobsSent = true
                    running[i].promptLogprobs = nil
                    running[i].job.onEvent(.promptLogprobs(scores))
                }
                if running[i].job.maxTokens == 0 {
                    endings.append((i, .finished(.length)))
                    continue
                }
            }
            if let sample = samples[b], let outcome = accept(sample, at: i, now: now) {
                endings.append((i, outcome))
            }
        }
        for e in endings.sorted(by: { $0.index > $1.index }) { end(e.index, e.outcome) }
    }

    /// Streams one sampled token; returns how the job ends if this token ends it.
    /// Mutates the running entry in place so the token history and text buffers are never copied per token.
    private mutating func accept(_ sample: SampledToken, at i: Int, now: Double) -> JobOutcome? {
        let token = sample.token
        let request = running[i].job.request
        running[i].job.generation!.tokens.append(token)
        running[i].job.generation!.generated += 1
        var text: String
        var finish: FinishReason?
        if decoder.endOfGenerationTokens.contains(token) {
            text = running[i].job.generation!.text.finish()
            finish = .stop
        } else {
            let pushed = running[i].job.generation!.text.push(decoder.bytes(of: token))
            text = pushed.text
            if pushed.stopped {
                finish = .stop
            } else if running[i].job.generation!.generated >= running[i].job.maxTokens {
                text += running[i].job.generation!.text.finish()
                finish = .length
            }
        }
        var logprob: TokenLogprob?
        var top: [TokenLogprob] = []
        if request.logprobs != nil, let lp = sample.logprob {
            logprob = TokenLogprob(token: token, bytes: decoder.bytes(of: token), logprob: lp)
            top = withBytes(sample.top)
        }
        if let last = running[i].job.lastTokenMono {
            core.observer?.tokenEmitted(id: request.id, priority: request.priority, gapSeconds: now - last)
        } else {
            running[i].job.firstTokenMono = now
            running[i].job.firstTokenUnix = core.clock.unix()
            core.observer?.firstToken(id: request.id, priority: request.priority,
                                      ttftSeconds: now - running[i].job.enqueuedMono)
        }
        running[i].job.lastTokenMono = now
        running[i].job.onEvent(.token(GeneratedToken(token: token, text: text, logprob: logprob, topLogprobs: top)))
        return finish.map { .finished($0) }
    }

    /// A running job ends: blocks back to the pool (exactly once, here), out of the active set, then concluded.
    private mutating func end(_ index: Int, _ outcome: JobOutcome) {
        let r = running.remove(at: index)
        allocator.release(r.blocks)
        let available = allocator.available
        let count = activeRows
        core.state.withLock { s in
            if r.suspended { s.lot.remove(r.job.seq) }
            s.active.remove(r.job.seq)
            s.aborts.removeValue(forKey: r.job.seq)
            s.availableBlocks = available
            s.running = count
        }
        core.conclude(r.job, outcome, matchedStop: r.job.generation?.text.matchedStop)
    }

    /// Scores as the API reports them: with each token's bytes.
    private func withBytes(_ scores: [TokenScore]) -> [TokenLogprob] {
        scores.map { TokenLogprob(token: $0.token, bytes: decoder.bytes(of: $0.token), logprob: $0.logprob) }
    }

    private func endUnadmitted(_ job: SchedulerJob, _ outcome: JobOutcome) {
        core.state.withLock { s in
            s.active.remove(job.seq)
            s.aborts.removeValue(forKey: job.seq)
        }
        core.conclude(job, outcome)
    }
}
