// The recorder's shared state and its writer thread: the buffer producers append to, the loop that drains it into
// SQLite, and what that loop learns about the database (failures, a file replaced under it, its size).
import Locks
import Synchronization

/// State shared by producers, readers and the writer thread.
final class RecorderCore: Sendable {
    struct Pending {
        var jobs: [JobRecord] = []
        /// Job rows the writer has taken and not yet committed: still answered by `bufferedJob(id:)`, and retried
        /// from here when their write fails.
        var inFlight: [JobRecord] = []
        var samples: [QueueSample] = []
        var lockWaits: [LockWaitSample] = []
        var closed = false
    }

    private struct Condition {
        var since: Double
        var failing = false
        var lastError: String?
        var lastErrorAt: Double?
    }

    private struct Batch {
        var jobs: [JobRecord]
        var samples: [QueueSample]
        var lockWaits: [LockWaitSample]

        var isEmpty: Bool { jobs.isEmpty && samples.isEmpty && lockWaits.isEmpty }
    }

    let path: String
    let options: RecorderOptions
    let buffer = InstrumentedLock(name: "recorder", Pending())
    let signal = WriterSignal()
    let dropped = Atomic<UInt64>(0)
    let writeFailures = Atomic<UInt64>(0)
    let degraded = Atomic<Bool>(false)
    let databaseBytes = Atomic<Int>(0)
    let lastWriteError = Locked<RecorderError?>(nil)
    /// The read connection, reopened by the writer when the file changes; nil once closed.
    let reader = Locked<RecorderReader?>(nil)
    private let condition: Locked<Condition>
    private let log: RecorderLogSink
    private let writerState = WriterState()
    private let writerTasks = Locked<[@Sendable (SQLiteConnection) -> Void]>([])
    /// While writes fail, retries wait this long unless a flush asks for one (a full disk rarely clears in ms).
    private static let retryNanoseconds: UInt64 = 1_000_000_000

    /// Opens the database at once, so one that cannot be used is an error at startup.
    init(path: String, options: RecorderOptions, log: @escaping RecorderLogSink) throws(RecorderError) {
        self.path = path
        self.options = options
        self.log = log
        condition = Locked(Condition(since: MetricsClock.unixSeconds()))
        _ = try openDatabase()
    }

    // MARK: Producers

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

    // MARK: Readers

    /// A recorded job not yet committed. The first row recorded under an id wins, as in the table.
    func bufferedJob(id: String) -> JobRecord? {
        buffer.withLock { pending in
            pending.inFlight.first { $0.id == id } ?? pending.jobs.first { $0.id == id }
        }
    }

    func health() -> RecorderHealth {
        let buffered = buffer.withLock { $0.jobs.count + $0.inFlight.count }
        return condition.withLock { c in
            RecorderHealth(
                state: c.failing ? .degraded : .ok, since: c.since, lastError: c.lastError, lastErrorAt: c.lastErrorAt,
                writeErrors: writeFailures.load(ordering: .relaxed), bufferedJobs: buffered,
                databaseBytes: databaseBytes.load(ordering: .relaxed))
        }
    }

    /// Runs `task` on the writer thread with its connection before the next batch (tests use it to set
    /// connection-scoped pragmas such as `max_page_count`).
    func onWriterThread(_ task: @escaping @Sendable (SQLiteConnection) -> Void) {
        writerTasks.withLock { $0.append(task) }
        signal.wake()
    }

    // MARK: The writer thread

    /// The writer thread's loop: sleep, drain, write, prune when due, acknowledge flushes; checkpoint and close
    /// after the last drain.
    func runWriter() {
        // Waking twice per interval keeps a row's time in memory within one interval even with a slow commit.
        let tick = UInt64(options.flushInterval * 1e9 / 2)
        let pruneEvery = UInt64(options.pruneInterval * 1e9)
        var nextPrune: UInt64 = 0
        var answeredTicket: UInt64 = 0
        while true {
            let (ticket, stopping) = signal.waitForWork(timeoutNanoseconds: tick)
            runWriterTasks()
            writeBatch(forced: stopping || ticket > answeredTicket)
            answeredTicket = ticket
            if let retention = options.retention, !degraded.load(ordering: .relaxed),
               let writer = writerState.writer, MetricsClock.monotonicNanoseconds() >= nextPrune {
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
        finish()
        signal.markExited()
    }

    private func runWriterTasks() {
        let tasks = writerTasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        guard let db = writerState.writer?.db else { return }
        for task in tasks { task(db) }
    }

    /// One attempt at writing everything buffered. While writes fail, only forced attempts (a flush, the last
    /// drain) come sooner than `retryNanoseconds` after the previous one.
    private func writeBatch(forced: Bool) {
        let state = writerState
        if degraded.load(ordering: .relaxed) && !forced && MetricsClock.monotonicNanoseconds() < state.retryAt {
            return
        }
        let batch = take()
        do throws(RecorderError) {
            let writer = try openDatabase()
            guard !batch.isEmpty else { return }
            try writer.write(jobs: batch.jobs, samples: batch.samples, lockWaits: batch.lockWaits)
            buffer.withLock { $0.inFlight.removeAll() }
            databaseBytes.store(DatabaseFile.bytes(path), ordering: .relaxed)
            noteSuccess(writtenJobs: batch.jobs.count)
        } catch {
            // Job rows stay in `inFlight` for the next attempt; samples are expendable.
            let lostSamples = UInt64(batch.samples.count + batch.lockWaits.count)
            if lostSamples > 0 { dropped.wrappingAdd(lostSamples, ordering: .relaxed) }
            noteFailure(error)
        }
    }

    private func take() -> Batch {
        buffer.withLock { pending -> Batch in
            // Swapping keeps the critical section O(1) whatever the backlog, except while retrying after failures.
            if pending.inFlight.isEmpty {
                swap(&pending.inFlight, &pending.jobs)
            } else {
                pending.inFlight.append(contentsOf: pending.jobs)
                pending.jobs.removeAll()
            }
            var batch = Batch(jobs: pending.inFlight, samples: [], lockWaits: [])
            swap(&batch.samples, &pending.samples)
            swap(&batch.lockWaits, &pending.lockWaits)
            return batch
        }
    }

    /// The write connection to the file now at `path`: the open one, unless that file was deleted or replaced,
    /// in which case both connections are closed and the file at `path` is opened (or created) and migrated.
    private func openDatabase() throws(RecorderError) -> RecorderWriter {
        let state = writerState
        if let writer = state.writer {
            guard FileIdentity.of(path) != state.identity else { return writer }
            log(.warning, "recorder: the database file \(path) was deleted or replaced while open; "
                + "writing to the file now at that path (created with its schema if missing) instead")
            let sidecars = state.sidecars
            closeConnections()
            DatabaseFile.removeSidecars(of: path, stillMatching: sidecars)
        }
        DatabaseFile.removeOrphanedSidecars(of: path)
        try DatabaseFile.createParentDirectory(of: path)
        try DatabaseFile.checkWritable(path)
        let writer = try RecorderWriter(path: path)
        let reader = try RecorderReader(path: path)
        self.reader.withLock { $0 = reader }
        state.writer = writer
        state.identity = FileIdentity.of(path)
        state.sidecars = DatabaseFile.sidecars(of: path)
        databaseBytes.store(DatabaseFile.bytes(path), ordering: .relaxed)
        return writer
    }

    private func closeConnections() {
        reader.withLock { $0 = nil }
        writerState.writer = nil
        writerState.identity = nil
    }

    private func noteSuccess(writtenJobs: Int) {
        let now = MetricsClock.unixSeconds()
        if let line = writerState.failures.succeeded(now: now, written: writtenJobs) { log(.info, line) }
        guard degraded.load(ordering: .relaxed) else { return }
        condition.withLock { c in
            c.failing = false
            c.since = now
        }
        degraded.store(false, ordering: .relaxed)
    }

    private func noteFailure(_ error: RecorderError) {
        let now = MetricsClock.unixSeconds()
        writeFailures.wrappingAdd(1, ordering: .relaxed)
        lastWriteError.withLock { $0 = error }
        condition.withLock { c in
            if !c.failing {
                c.failing = true
                c.since = now
            }
            c.lastError = error.description
            c.lastErrorAt = now
        }
        degraded.store(true, ordering: .relaxed)
        writerState.retryAt = MetricsClock.monotonicNanoseconds() &+ Self.retryNanoseconds
        let buffered = buffer.withLock { $0.jobs.count + $0.inFlight.count }
        if let line = writerState.failures.failed(error.description, now: now, bufferedJobs: buffered) {
            log(.error, line)
        }
    }

    /// After the last drain: say what could not be written, copy the log into the main file, close.
    private func finish() {
        let lost = buffer.withLock { $0.jobs.count + $0.inFlight.count }
        if lost > 0 {
            log(.error, "recorder: \(lost) job rows could not be written before closing and are lost; last error: "
                + (lastWriteError.withLock { $0 }.map { "\($0)" } ?? "none"))
        }
        // The reader goes first: the last connection to close also removes the emptied log.
        reader.withLock { $0 = nil }
        if let writer = writerState.writer {
            do throws(RecorderError) {
                if try !writer.checkpoint() {
                    log(.warning, "recorder: the closing checkpoint could not copy the whole write-ahead log")
                }
            } catch {
                log(.warning, "recorder: the closing checkpoint failed: \(error)")
            }
        }
        closeConnections()
        databaseBytes.store(DatabaseFile.bytes(path), ordering: .relaxed)
    }
}

/// What only the writer thread touches once it runs (and `RecorderCore.init` before it starts).
private final class WriterState: @unchecked Sendable {
    var writer: RecorderWriter?
    /// The file `writer` has open, as `path` named it when it was opened.
    var identity: FileIdentity?
    /// The WAL and shared-memory files that went with it.
    var sidecars: [String: FileIdentity] = [:]
    var failures = WriteFailureLog()
    /// Monotonic nanoseconds before which an unforced retry waits.
    var retryAt: UInt64 = 0
}
