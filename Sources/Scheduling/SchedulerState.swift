// State shared by the submitting threads and the engine loop, under the scheduler lock. Its methods keep the
// invariants in one place: a job is in exactly one of `parked` (with a lot entry) or `active`, and ends once.
import Inference

struct SchedulerState: Sendable {
    private(set) var lot: Lot
    /// Jobs in the lot (new or preempted), by seq.
    private(set) var parked: [UInt64: SchedulerJob] = [:]
    /// Jobs the engine loop holds (admitted, not yet ended).
    private(set) var active: Set<UInt64> = []
    /// Abort requests for active jobs, handled by the loop between steps.
    private var aborts: [UInt64: JobFailure] = [:]
    private var nextSeq: UInt64 = 1
    private var drain = DrainRate()
    private(set) var counters = SchedulerCounters()
    private(set) var running = 0
    private(set) var batchSize = 0
    private(set) var availableBlocks: Int
    private(set) var shuttingDown = false
    private(set) var graceDeadline: Double?
    private(set) var loopStarted = false
    /// When the engine loop last went round (monotonic seconds); liveness compares it with the clock.
    private(set) var lastBeat: Double?
    var lastPublished: SchedulerStats?
    /// Block releases that found the block already free (must stay 0; tests check it).
    private(set) var doubleReleases = 0
    private(set) var prefixCache: PrefixCacheStats

    init(lot: Lot, availableBlocks: Int, prefixCache: Bool) {
        self.lot = lot
        self.availableBlocks = availableBlocks
        self.prefixCache = PrefixCacheStats(enabled: prefixCache)
    }

    enum Arrival {
        case parked
        /// Parked; this waiter was pushed out for it and must be ended as evicted.
        case parkedEvicting(SchedulerJob, retryAfter: Int)
        case refused(JobFailure)
    }

    mutating func takeSeq() -> UInt64 {
        defer { nextSeq += 1 }
        return nextSeq
    }

    /// A new job asks for a place in the lot.
    mutating func park(_ job: SchedulerJob, deadline: Double, now: Double) -> Arrival {
        if shuttingDown { return .refused(.shuttingDown) }
        // An idle loop sleeps without beating; the first job after a quiet spell must not read as a stall.
        if lot.isEmpty && active.isEmpty && lastBeat != nil { lastBeat = now }
        let entry = Lot.Entry(seq: job.seq, cost: job.costBlocks, priority: job.request.priority,
                              enqueuedAt: job.enqueuedMono, deadline: deadline)
        switch lot.offer(entry, now: now) {
        case .parked:
            parked[job.seq] = job
            return .parked
        case .parkedEvicting(let victim):
            parked[job.seq] = job
            guard let evicted = parked.removeValue(forKey: victim.seq) else { return .parked }
            return .parkedEvicting(evicted, retryAfter: retryAfter(for: evicted.request.priority, now: now))
        case .full:
            return .refused(.queueFull(retryAfterSeconds: retryAfter(for: job.request.priority, now: now)))
        }
    }

    func retryAfter(for priority: Priority, now: Double) -> Int {
        drain.retryAfter(ahead: lot.ahead(of: priority, now: now), now: now)
    }

    /// Stops admissions; the loop ends what is left once `graceDeadline` passes. Returns whether the loop runs.
    mutating func beginShutdown(grace: Double, now: Double) -> Bool {
        if !shuttingDown {
            shuttingDown = true
            graceDeadline = now + Swift.max(0, grace)
        }
        return loopStarted
    }

    /// The grace period ends now: the loop ends what still runs on its next pass.
    mutating func endGrace(now: Double) {
        guard shuttingDown else { return }
        graceDeadline = Swift.min(graceDeadline ?? now, now)
    }

    mutating func beat(_ now: Double) { lastBeat = now }

    /// Seconds since the loop last went round while work waits or runs; nil when idle or before the loop starts.
    func stalledFor(now: Double) -> Double? {
        guard let lastBeat, !lot.isEmpty || !active.isEmpty else { return nil }
        return now - lastBeat
    }

    /// True once, for the caller that gets to start the loop.
    mutating func startLoop() -> Bool {
        guard !loopStarted && !shuttingDown else { return false }
        loopStarted = true
        return true
    }

    /// The cancellation path's first half: a parked job leaves the lot and is returned, to be ended by the caller;
    /// an active one is flagged for the loop to end between steps.
    mutating func abort(_ seq: UInt64, _ failure: JobFailure) -> SchedulerJob? {
        if let job = parked.removeValue(forKey: seq) {
            lot.remove(seq)
            return job
        }
        if active.contains(seq) && aborts[seq] == nil { aborts[seq] = failure }
        return nil
    }

    mutating func takeAborts() -> [(seq: UInt64, failure: JobFailure)] {
        defer { aborts = [:] }
        return aborts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    var parkedSeqs: [UInt64] { parked.keys.sorted() }

    /// A job the loop admitted, with the block table reserved for it and how many of its blocks were cache hits.
    struct Admission {
        var job: SchedulerJob
        var table: [Int32]?
        var hitBlocks = 0
    }

    /// The loop admits from the lot: new jobs move to `active` (returned, their blocks taken from `blocks` in
    /// admission order, so a job's cost sees what the ones before it took); suspended sequences' seqs are returned to
    /// get their row back.
    mutating func admit(freeRows: Int, now: Double, blocks: inout KVBlockManager, blockSize: Int)
        -> (jobs: [Admission], resumed: [UInt64])
    {
        let waiting = parked
        var tables: [UInt64: (table: [Int32], hits: Int)] = [:]
        let admitted = lot.admit(freeSlots: freeRows, now: now) { e, commit in
            guard let job = waiting[e.seq] else { return false }
            let match = job.match(in: blocks, blockSize: blockSize)
            if match.nextIsPending { return false }
            guard commit else { return blocks.cost(blocks: job.costBlocks, match: match) <= blocks.available }
            guard let table = blocks.allocate(blocks: job.costBlocks, match: match, hashes: job.blockHashes) else {
                return false
            }
            tables[e.seq] = (table, match.hits.count)
            return true
        }
        var jobs: [Admission] = []
        var resumed: [UInt64] = []
        for e in admitted {
            if e.holdsBlocks {
                resumed.append(e.seq)
            } else if let job = activate(e.seq, now: now) {
                jobs.append(Admission(job: job, table: tables[e.seq]?.table, hitBlocks: tables[e.seq]?.hits ?? 0))
            } else if let t = tables[e.seq] {
                blocks.release(t.table)
            }
        }
        return (jobs, resumed)
    }

    /// One waiter out of the lot now, for the room made for it. Nil for a suspended sequence (it only needs its
    /// row back) or a waiter that left meanwhile.
    mutating func take(_ entry: Lot.Entry, now: Double) -> SchedulerJob? {
        guard lot.remove(entry.seq) != nil, !entry.holdsBlocks else { return nil }
        return activate(entry.seq, now: now)
    }

    private mutating func activate(_ seq: UInt64, now: Double) -> SchedulerJob? {
        guard let job = parked.removeValue(forKey: seq) else { return nil }
        active.insert(seq)
        if job.admittedMono == nil {
            counters.admitted += 1
            drain.recordAdmission(at: now)
        }
        return job
    }

    /// A running sequence lends its row: it waits in the lot for a row only.
    mutating func suspend(_ job: SchedulerJob, now: Double) {
        lot.suspend(seq: job.seq, priority: job.request.priority, enqueuedAt: job.enqueuedMono, now: now)
        counters.suspended += 1
    }

    /// A suspended sequence got its row back outside admission (shutdown lets it finish in the grace period).
    mutating func unsuspend(_ seq: UInt64) { lot.remove(seq) }

    /// A preempted job goes back to the head of its class; if an abort was pending it is returned instead, and the
    /// caller ends the job with it.
    mutating func requeue(_ job: SchedulerJob, wasSuspended: Bool, now: Double) -> JobFailure? {
        active.remove(job.seq)
        counters.preempted += 1
        // A suspended victim's row-only entry gives way to a full-cost one.
        if wasSuspended { lot.remove(job.seq) }
        if let failure = aborts.removeValue(forKey: job.seq) { return failure }
        lot.requeue(Lot.Entry(seq: job.seq, cost: job.costBlocks, priority: job.request.priority,
                              enqueuedAt: job.enqueuedMono, deadline: nil), now: now)
        parked[job.seq] = job
        return nil
    }

    /// An active job left the loop (it is about to be concluded).
    mutating func release(_ seq: UInt64, wasSuspended: Bool) {
        if wasSuspended { lot.remove(seq) }
        active.remove(seq)
        aborts.removeValue(forKey: seq)
    }

    /// The loop's view of its own state, published after every change.
    mutating func update(running: Int, batchSize: Int, blocks: KVBlockManager, cache: PrefixCacheStats) {
        self.running = running
        self.batchSize = batchSize
        availableBlocks = blocks.available
        doubleReleases = blocks.doubleReleases
        prefixCache = cache
    }

    mutating func count(_ end: JobEnd) { counters.count(end) }
}
