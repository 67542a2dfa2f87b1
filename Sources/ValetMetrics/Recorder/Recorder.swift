// The durable record: every job, queue sample and notable lock wait, buffered in memory and written to SQLite
// by one writer thread in batched transactions, so recording never waits on disk.
import Locks
import Synchronization

/// Records to one SQLite database (WAL, `synchronous=NORMAL`, schema migrated at startup).
///
/// `record(_:)` only appends to a buffer under a short lock. Job rows are never dropped: while writes fail they
/// wait in memory and are written once the database accepts them again. Queue and lock-wait samples are bounded
/// by `RecorderOptions.sampleCapacity` and counted in `droppedCount` when the buffer is full. A row is committed
/// at most one flush interval after it was recorded while the database is healthy. `job(id:)` also answers for
/// rows still in memory; the other reads see committed rows only (call `flush()` first to see everything).
///
/// If the database file is deleted or replaced while open, the writer notices before its next batch, logs it
/// once and opens (or creates, schema included) the file now at `path`. `close()` checkpoints the write-ahead
/// log, so afterwards the main file alone holds everything.
public final class Recorder: Sendable {
    public let path: String
    public let options: RecorderOptions
    let core: RecorderCore
    private let thread: WorkerThread

    /// Opens (creating it and its parent directory if needed) and migrates the database, then starts the writer.
    /// Throws `notWritable` for a database this process could not write. `log` receives the writer's messages.
    public init(
        path: String, options: RecorderOptions = RecorderOptions(),
        log: @escaping RecorderLogSink = RecorderLog.standardError
    ) throws(RecorderError) {
        self.path = path
        self.options = options
        let core = try RecorderCore(path: path, options: options, log: log)
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

    // MARK: Health (atomics, or a short lock)

    /// Samples dropped because the buffer was full (or busy, for lock-wait samples) since this recorder started.
    public var droppedCount: UInt64 { core.dropped.load(ordering: .relaxed) }

    /// Failed write attempts since start (the rows were kept and retried). Also see `lastWriteError`.
    public var writeFailureCount: UInt64 { core.writeFailures.load(ordering: .relaxed) }

    public var lastWriteError: RecorderError? { core.lastWriteError.withLock { $0 } }

    /// True while writes are failing (job rows then wait in memory).
    public var isDegraded: Bool { core.degraded.load(ordering: .relaxed) }

    /// The database's main file plus its write-ahead log, in bytes, as of the writer's last batch.
    public var databaseBytes: Int { core.databaseBytes.load(ordering: .relaxed) }

    /// State, last error and backlog, for `/v1/metrics`.
    public var health: RecorderHealth { core.health() }

    /// Blocks until everything recorded before the call is committed, or, while the database refuses writes,
    /// until one more attempt failed (shutdown, tests). Returns false if the recorder is already closed.
    @discardableResult
    public func flush() -> Bool {
        core.signal.flushAndWait()
    }

    /// Writes what is buffered, checkpoints the write-ahead log into the main file, stops the writer and closes
    /// the database. Later records are ignored. Idempotent.
    public func close() {
        guard core.beginClose() else { return }
        core.signal.stop()
        thread.join()
    }

    // MARK: Reading

    /// The job with this client-visible id, or nil if none was recorded (or it was pruned). A job recorded but
    /// not yet committed is answered from memory, so a client can read its own job right after its response.
    public func job(id: String) throws(RecorderError) -> JobRecord? {
        // Memory first: the writer drops a row from memory only after its commit, so a row missed here is
        // already visible to the read below.
        if let buffered = core.bufferedJob(id: id) { return buffered }
        return try withReader { reader throws(RecorderError) in try reader.job(id: id) }
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
        let result: Result<T, RecorderError> = core.reader.withLock { reader in
            guard let reader else { return .failure(.closed) }
            do throws(RecorderError) { return .success(try body(reader)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
