// The read side of the database on its own connection: one job by id, all-time totals, recent samples.
import Locks

/// Owns the read-only connection. Callers serialize access (the recorder keeps it in a `Mutex`).
final class RecorderReader: @unchecked Sendable {
    private let db: SQLiteConnection
    private let selectJob: SQLiteStatement
    private let selectTotals: SQLiteStatement
    private let selectHistory: SQLiteStatement
    private let selectLockWaits: SQLiteStatement

    init(path: String) throws(RecorderError) {
        db = try SQLiteConnection(path: path, readOnly: true)
        selectJob = try db.prepare("""
            SELECT id, model, priority, status, finish_reason, prompt_tokens, completion_tokens, cost_blocks,
                   enqueued_at, admitted_at, first_token_at, finished_at, error, cached_tokens, kind,
                   constraint_kind
            FROM jobs WHERE id = ?1
            """)
        selectTotals = try db.prepare(
            "SELECT status, finish_reason, jobs, prompt_tokens, completion_tokens, cached_tokens FROM job_totals")
        selectHistory = try db.prepare("""
            SELECT time, queued, running, used_blocks, total_blocks, cached_blocks FROM queue_samples
            WHERE time >= ?1 ORDER BY time LIMIT ?2
            """)
        selectLockWaits = try db.prepare(
            "SELECT time, lock, wait_seconds FROM lock_waits WHERE time >= ?1 ORDER BY time LIMIT ?2")
    }

    func job(id: String) throws(RecorderError) -> JobRecord? {
        defer { selectJob.reset() }
        selectJob.bind(1, id)
        guard try selectJob.step() else { return nil }
        let s = selectJob
        // A status this build does not know (written by a newer Valet) reads as an engine error, not a crash.
        let status = JobRecord.Status(rawValue: s.text(3)) ?? .engineError
        return JobRecord(
            id: s.text(0), model: s.text(1), priority: s.text(2), status: status, finishReason: s.optionalText(4),
            promptTokens: s.int(5), completionTokens: s.int(6), cachedTokens: s.int(13), costBlocks: s.int(7),
            enqueuedAt: s.double(8), admittedAt: s.optionalDouble(9), firstTokenAt: s.optionalDouble(10),
            finishedAt: s.double(11), error: s.optionalText(12), kind: s.text(14),
            constraint: s.text(15))
    }

    func totals() throws(RecorderError) -> JobTotals {
        defer { selectTotals.reset() }
        var totals = JobTotals()
        while try selectTotals.step() {
            let status = selectTotals.text(0)
            let finishReason = selectTotals.text(1)
            let jobs = selectTotals.int(2)
            totals.jobs += jobs
            totals.promptTokens += selectTotals.int(3)
            totals.completionTokens += selectTotals.int(4)
            totals.cachedTokens += selectTotals.int(5)
            totals.byStatus[status, default: 0] += jobs
            if !finishReason.isEmpty { totals.byFinishReason[finishReason, default: 0] += jobs }
        }
        return totals
    }

    func queueHistory(since: Double, limit: Int) throws(RecorderError) -> [QueueSample] {
        try rows(of: selectHistory, since: since, limit: limit) { s in
            QueueSample(time: s.double(0), queued: s.int(1), running: s.int(2), usedBlocks: s.int(3),
                        totalBlocks: s.int(4), cachedBlocks: s.int(5))
        }
    }

    func lockWaits(since: Double, limit: Int) throws(RecorderError) -> [LockWaitSample] {
        try rows(of: selectLockWaits, since: since, limit: limit) { s in
            LockWaitSample(time: s.double(0), lock: s.text(1), waitSeconds: s.double(2))
        }
    }

    /// The rows of a `WHERE time >= ?1 … LIMIT ?2` sample query, oldest first.
    private func rows<Row>(
        of statement: SQLiteStatement, since: Double, limit: Int, _ row: (SQLiteStatement) -> Row
    ) throws(RecorderError) -> [Row] {
        defer { statement.reset() }
        statement.bind(1, since)
        statement.bind(2, limit)
        var rows: [Row] = []
        while try statement.step() { rows.append(row(statement)) }
        return rows
    }

    /// `PRAGMA integrity_check`: "ok" for a healthy database, otherwise SQLite's list of problems.
    func integrityCheck() throws(RecorderError) -> String {
        let statement = try db.prepare("PRAGMA integrity_check")
        var lines: [String] = []
        while try statement.step() { lines.append(statement.text(0)) }
        return lines.joined(separator: "\n")
    }

    func count(table: String) throws(RecorderError) -> Int {
        try db.scalarInt("SELECT count(*) FROM \(table)")
    }
}
