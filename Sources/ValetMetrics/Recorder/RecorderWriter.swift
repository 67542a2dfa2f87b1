// The writer thread's side of the database: batched inserts in one transaction, the totals upkeep, pruning.
import CSQLite
import Locks

/// Owns the write connection and its prepared statements. Used only by the writer thread (and by `Recorder.init`
/// before that thread starts).
final class RecorderWriter: @unchecked Sendable {
    let db: SQLiteConnection
    private let insertJob: SQLiteStatement
    private let addTotals: SQLiteStatement
    private let insertSample: SQLiteStatement
    private let insertLockWait: SQLiteStatement
    private let pruneStatements: [SQLiteStatement]

    init(path: String) throws(RecorderError) {
        let db = try SQLiteConnection(path: path, readOnly: false)
        self.db = db
        // SQLite quietly opens a file it may not write read-only; every write would then fail.
        if sqlite3_db_readonly(db.handle, "main") == 1 {
            throw RecorderError.notWritable(path: path, reason: "SQLite could open it read-only only")
        }
        let mode = try db.scalarText("PRAGMA journal_mode = WAL")
        guard mode?.lowercased() == "wal" else {
            throw RecorderError.sqlite(code: 0, message: "journal_mode is \(mode ?? "unknown")", context: "enabling WAL")
        }
        // NORMAL in WAL mode: a commit survives a process crash (kill -9); only power loss may lose the last ones.
        try db.execute("PRAGMA synchronous = NORMAL")
        try RecorderSchema.migrate(db)
        try Self.probeWrite(db, path: path)
        insertJob = try db.prepare("""
            INSERT INTO jobs (id, model, priority, status, finish_reason, prompt_tokens, completion_tokens,
                              cost_blocks, enqueued_at, admitted_at, first_token_at, finished_at, error, cached_tokens, kind,
                              constraint_kind)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
            ON CONFLICT (id) DO NOTHING
            """)
        addTotals = try db.prepare("""
            INSERT INTO job_totals (status, finish_reason, jobs, prompt_tokens, completion_tokens, cached_tokens)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (status, finish_reason) DO UPDATE SET
                jobs = jobs + excluded.jobs,
                prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                completion_tokens = completion_tokens + excluded.completion_tokens,
                cached_tokens = cached_tokens + excluded.cached_tokens
            """)
        insertSample = try db.prepare(
            "INSERT INTO queue_samples (time, queued, running, used_blocks, total_blocks, cached_blocks) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        insertLockWait = try db.prepare("INSERT INTO lock_waits (time, lock, wait_seconds) VALUES (?1, ?2, ?3)")
        // Chunked so a large backlog never holds the write transaction for long.
        pruneStatements = try [
            "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE finished_at < ?1 LIMIT 5000)",
            "DELETE FROM queue_samples WHERE rowid IN (SELECT rowid FROM queue_samples WHERE time < ?1 LIMIT 5000)",
            "DELETE FROM lock_waits WHERE rowid IN (SELECT rowid FROM lock_waits WHERE time < ?1 LIMIT 5000)",
        ].map { sql throws(RecorderError) in try db.prepare(sql) }
    }

    /// Commits one small write, so a database that cannot be written fails here, at startup, rather than at every
    /// write batch. A full disk is not refused: the recorder starts degraded and writes once space returns.
    private static func probeWrite(_ db: SQLiteConnection, path: String) throws(RecorderError) {
        do throws(RecorderError) {
            try db.execute("BEGIN IMMEDIATE")
            try db.execute("PRAGMA user_version = \(RecorderSchema.currentVersion)")
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            if case let .sqlite(code, _, _) = error, code & 0xff == SQLITE_FULL { return }
            if case let .sqlite(_, message, _) = error { throw RecorderError.notWritable(path: path, reason: message) }
            throw error
        }
    }

    /// Copies the whole write-ahead log into the main file and empties it, so the main file alone holds every
    /// commit. Returns false if a reader kept part of the log from being copied.
    func checkpoint() throws(RecorderError) -> Bool {
        let statement = try db.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        guard try statement.step() else { return true }
        return statement.int(0) == 0
    }

    private struct TotalsKey: Hashable {
        var status: String
        var finishReason: String
    }

    private struct TotalsDelta {
        var jobs = 0
        var promptTokens = 0
        var completionTokens = 0
        var cachedTokens = 0
    }

    /// Writes everything in one transaction; on failure nothing is written and the caller keeps the jobs.
    func write(jobs: [JobRecord], samples: [QueueSample], lockWaits: [LockWaitSample]) throws(RecorderError) {
        guard !(jobs.isEmpty && samples.isEmpty && lockWaits.isEmpty) else { return }
        try db.execute("BEGIN IMMEDIATE")
        do {
            var totals: [TotalsKey: TotalsDelta] = [:]
            for job in jobs {
                try insertJob.run(job.id, job.model, job.priority, job.status.rawValue, job.finishReason,
                                  job.promptTokens, job.completionTokens, job.costBlocks, job.enqueuedAt,
                                  job.admittedAt, job.firstTokenAt, job.finishedAt, job.error, job.cachedTokens, job.kind,
                                  job.constraint)
                // A repeated id is ignored by the insert and must not count twice.
                guard db.changes == 1 else { continue }
                let key = TotalsKey(status: job.status.rawValue, finishReason: job.finishReason ?? "")
                totals[key, default: TotalsDelta()].jobs += 1
                totals[key, default: TotalsDelta()].promptTokens += job.promptTokens
                totals[key, default: TotalsDelta()].completionTokens += job.completionTokens
                totals[key, default: TotalsDelta()].cachedTokens += job.cachedTokens
            }
            for (key, delta) in totals {
                try addTotals.run(key.status, key.finishReason, delta.jobs, delta.promptTokens, delta.completionTokens,
                                  delta.cachedTokens)
            }
            for sample in samples {
                try insertSample.run(sample.time, sample.queued, sample.running, sample.usedBlocks, sample.totalBlocks,
                                     sample.cachedBlocks)
            }
            for wait in lockWaits {
                try insertLockWait.run(wait.time, wait.lock, wait.waitSeconds)
            }
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Deletes up to `maxChunks` chunks of rows older than `cutoff` (unix seconds) from each table.
    /// Returns true if rows may remain, so the caller comes back soon.
    func prune(olderThan cutoff: Double, maxChunks: Int = 20) throws(RecorderError) -> Bool {
        var more = false
        for statement in pruneStatements {
            var chunks = 0
            while chunks < maxChunks {
                statement.bind(1, cutoff)
                try statement.run()
                chunks += 1
                if db.changes < 5_000 { break }
            }
            if chunks == maxChunks { more = true }
        }
        return more
    }
}
