// The durable record: every job, queue sample and notable lock wait, buffered in memory and written to SQLite
// by one writer thread in batched transactions, so recording never waits on disk.
import Locks
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Records to one SQLite database (WAL, `synchronous=NORMAL`, schema migrated at startup).
///
/// `record(_:)` only appends to a buffer under a short lock. Job rows are never dropped; queue and lock-wait samples
/// are bounded by `RecorderOptions.sampleCapacity` and counted in `droppedCount` when the buffer is full. A row is
/// committed at most one flush interval after it was recorded. Reads use a second connection and see committed
/// rows only; call `flush()` first when a read must see everything recorded so far.
public final class Recorder: Sendable {
    public let path: String
    public let options: RecorderOptions
    private let core: RecorderCore
    private let reader: Mutex<RecorderReader?>
    private let thread: WorkerThread

    /// Opens (creating it and its parent directory if needed) and migrates the database, then starts the writer.
    public init(path: String, options: RecorderOptions = RecorderOptions()) throws(RecorderError) {
        self.path = path
        self.options = options
        try Self.createParentDirectory(of: path)
        let writer = try RecorderWriter(path: path)
        reader = Mutex(try RecorderReader(path: path))
        let core = RecorderCore(options: options, writer: writer)
        self.core = core
        thread = try WorkerThread { core.runWriter() }
    }

    deinit {
        close()
    }

    // MARK: Recording (any thread, never blocks on I/O)

    /// Queues one job row. Never dropped: job rows stay buffered until written, even if writes fail for a while.
    public func record(_ job: JobRecord) {
        core.enqueue(job)
    }

    /// Queues one queue-depth sample; dropped (and counted) if the sample buffer is full.
    public func record(_ sample: QueueSample) {
        core.enqueue(sample)
    }

    /// Queues one lock-wait sample; dropped (and counted) if the sample buffer is full.
    public func record(_ wait: LockWaitSample) {
        core.enqueue(wait, blocking: true)
    }

    /// Makes this recorder the destination of instrumented-lock wait samples (`lock_waits`): waits of at least
    /// `thresholdSeconds` plus one in `sampleEvery` of the shorter contended ones. Replaces any earlier destination.
    public func captureLockWaits(thresholdSeconds: Double = 0.000_1, sampleEvery: Int = 64) {
        InstrumentedLocks.setWaitSampleSink(thresholdSeconds: thresholdSeconds, sampleEvery: sampleEvery) {
            [weak core] sample in
            // Called right after some lock was released; try-lock only, so it can never wait or recurse.
            core?.enqueue(sample, blocking: false)
        }
    }

    /// Samples dropped because the buffer was full (or busy, for lock-wait samples) since this recorder started.
    public var droppedCount: UInt64 { core.dropped.load(ordering: .relaxed) }

    /// Failed write transactions since start (the rows were kept and retried). Also see `lastWriteError`.
    public var writeFailureCount: UInt64 { core.writeFailures.load(ordering: .relaxed) }

    public var lastWriteError: RecorderError? { core.lastWriteError.withLock { $0 } }

    /// Blocks until everything recorded before the call is committed (shutdown, tests).
    /// Returns false if the recorder is already closed.
    @discardableResult
    public func flush() -> Bool {
        core.signal.flushAndWait()
    }

    /// Writes what is buffered, stops the writer and closes the database. Later records are ignored. Idempotent.
    public func close() {
        guard core.beginClose() else { return }
        core.signal.stop()
        thread.join()
        reader.withLock { $0 = nil }
    }

    // MARK: Reading (committed rows only)

    /// The job with this client-visible id, or nil if none was recorded (or it was pruned).
    public func job(id: String) throws(RecorderError) -> JobRecord? {
        try withReader { reader throws(RecorderError) in try reader.job(id: id) }
    }

    /// All-time counts and token sums, from the aggregate table (cost does not grow with the jobs table).
    public func totals() throws(RecorderError) -> JobTotals {
        try withReader { reader throws(RecorderError) in try reader.totals() }
    }

    /// Queue samples with `time >= since` (unix seconds), oldest first, at most `limit` of them.
    public func queueHistory(since: Double, limit: Int = 10_000) throws(RecorderError) -> [QueueSample] {
        try withReader { reader throws(RecorderError) in try reader.queueHistory(since: since, limit: limit) }
    }

    /// Lock-wait samples with `time >= since`, oldest first, at most `limit` of them.
    public func lockWaits(since: Double, limit: Int = 10_000) throws(RecorderError) -> [LockWaitSample] {
        try withReader { reader throws(RecorderError) in try reader.lockWaits(since: since, limit: limit) }
    }

    /// `PRAGMA integrity_check` on the database: "ok" when healthy.
    public func integrityCheck() throws(RecorderError) -> String {
        try withReader { reader throws(RecorderError) in try reader.integrityCheck() }
    }

    func rowCount(table: String) throws(RecorderError) -> Int {
        try withReader { reader throws(RecorderError) in try reader.count(table: table) }
    }

    private func withReader<T>(_ body: (RecorderReader) throws(RecorderError) -> T) throws(RecorderError) -> T {
        let result: Result<T, RecorderError> = reader.withLock { reader in
            guard let reader else { return .failure(.closed) }
            do throws(RecorderError) { return .success(try body(reader)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func createParentDirectory(of path: String) throws(RecorderError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = String(path[..<slash])
        guard !directory.isEmpty else { return }
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw RecorderError.cannotCreateDirectory(path: prefix, errno: errno)
            }
            prefix += "/"
        }
    }
}

/// State shared by producers and the writer thread.
final class RecorderCore: Sendable {
    struct Pending {
        var jobs: [JobRecord] = []
        var samples: [QueueSample] = []
        var lockWaits: [LockWaitSample] = []
        var closed = false
    }

    let options: RecorderOptions
    let buffer = InstrumentedLock(name: "recorder", Pending())
    let signal = WriterSignal()
    let dropped = Atomic<UInt64>(0)
    let writeFailures = Atomic<UInt64>(0)
    let lastWriteError = Mutex<RecorderError?>(nil)
    private let writer: RecorderWriter

    init(options: RecorderOptions, writer: RecorderWriter) {
        self.options = options
        self.writer = writer
    }

    func enqueue(_ job: JobRecord) {
        let batchSize = options.batchSize
        let wake = buffer.withLock { pending -> Bool in
            guard !pending.closed else { return false }
            pending.jobs.append(job)
            return pending.jobs.count == batchSize
        }
        if wake { signal.wake() }
    }

    func enqueue(_ sample: QueueSample) {
        let capacity = options.sampleCapacity
        let accepted = buffer.withLock { pending -> Bool in
            guard !pending.closed else { return true }
            guard pending.samples.count + pending.lockWaits.count < capacity else { return false }
            pending.samples.append(sample)
            return true
        }
        if !accepted { dropped.wrappingAdd(1, ordering: .relaxed) }
    }

    func enqueue(_ wait: LockWaitSample, blocking: Bool) {
        let capacity = options.sampleCapacity
        let accepted: Bool
        if blocking {
            accepted = buffer.withLock { pending in Self.append(wait, to: &pending, capacity: capacity) }
        } else {
            accepted = buffer.withLockIfAvailable { pending in
                Self.append(wait, to: &pending, capacity: capacity)
            } ?? false
        }
        if !accepted { dropped.wrappingAdd(1, ordering: .relaxed) }
    }

    private static func append(_ wait: LockWaitSample, to pending: inout Pending, capacity: Int) -> Bool {
        guard !pending.closed else { return true }
        guard pending.samples.count + pending.lockWaits.count < capacity else { return false }
        pending.lockWaits.append(wait)
        return true
    }

    /// Marks the buffer closed; false if it already was.
    func beginClose() -> Bool {
        buffer.withLock { pending in
            if pending.closed { return false }
            pending.closed = true
            return true
        }
    }

    /// The writer thread's loop: sleep, drain, write, prune when due, acknowledge flushes; exit after closing.
    func runWriter() {
        // Waking twice per interval keeps a row's time in memory within one interval even with a slow commit.
        let tick = UInt64(options.flushInterval * 1e9 / 2)
        let pruneEvery = UInt64(options.pruneInterval * 1e9)
        var nextPrune: UInt64 = 0
        while true {
            let (ticket, stopping) = signal.waitForWork(timeoutNanoseconds: tick)
            drainAndWrite()
            if let retention = options.retention, MetricsClock.monotonicNanoseconds() >= nextPrune {
                var more = false
                do throws(RecorderError) {
                    more = try writer.prune(olderThan: MetricsClock.unixSeconds() - retention)
                } catch {
                    noteFailure(error)
                }
                nextPrune = more ? 0 : MetricsClock.monotonicNanoseconds() &+ pruneEvery
            }
            signal.completeFlush(ticket)
            if stopping { break }
        }
        signal.markExited()
    }

    private func drainAndWrite() {
        // Swapping the arrays out keeps the critical section O(1) whatever the backlog.
        var batch = buffer.withLock { pending -> Pending in
            var taken = Pending()
            swap(&taken.jobs, &pending.jobs)
            swap(&taken.samples, &pending.samples)
            swap(&taken.lockWaits, &pending.lockWaits)
            return taken
        }
        do throws(RecorderError) {
            try writer.write(jobs: batch.jobs, samples: batch.samples, lockWaits: batch.lockWaits)
        } catch {
            noteFailure(error)
            // Job rows go back to the front, in order, for the next attempt; samples are expendable.
            let lostSamples = UInt64(batch.samples.count + batch.lockWaits.count)
            if lostSamples > 0 { dropped.wrappingAdd(lostSamples, ordering: .relaxed) }
            let jobs = batch.jobs
            batch.jobs = []
            if !jobs.isEmpty { buffer.withLock { $0.jobs.insert(contentsOf: jobs, at: 0) } }
        }
    }

    private func noteFailure(_ error: RecorderError) {
        writeFailures.wrappingAdd(1, ordering: .relaxed)
        lastWriteError.withLock { $0 = error }
        if let log = options.log {
            log("\(error)")
            return
        }
        let message = "valet recorder: \(error)\n"
        _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}
