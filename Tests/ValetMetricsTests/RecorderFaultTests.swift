// The recorder when its database misbehaves: a full database (SQLite's max_page_count), the file deleted under
// it, a read-only file, reads of rows not yet written, and the checkpoint on close.
import CSQLite
import Locks
import Testing
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

private func job(_ id: String) -> JobRecord {
    let now = MetricsClock.unixSeconds()
    return JobRecord(id: id, model: "m", priority: "normal", status: .completed, finishReason: "stop",
                     promptTokens: 10, completionTokens: 5, costBlocks: 1, enqueuedAt: now - 1, finishedAt: now)
}

/// Collects the recorder's log lines.
private final class Lines: Sendable {
    let lines = Locked<[String]>([])
    var sink: RecorderLogSink { { [self] _, message in lines.withLock { $0.append(message) } } }
    func matching(_ text: String) -> [String] { lines.withLock { $0.filter { $0.contains(text) } } }
}

@Suite("Recorder faults")
struct RecorderFaultTests {
    @Test func aFullDatabaseDegradesKeepsJobsAndWritesThemOnceThereIsRoom() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = Lines()
        let recorder = try Recorder(path: dir.file("full.sqlite"), options: RecorderOptions(flushInterval: 0.05),
                                    log: log.sink)
        defer { recorder.close() }
        recorder.record(job("before"))
        #expect(recorder.flush())
        // Cap the file at the pages it has: the next rows need a page SQLite may not add.
        let pages = Locked<Int>(0)
        recorder.core.onWriterThread { db in
            let count = (try? db.scalarInt("PRAGMA page_count")) ?? 0
            pages.withLock { $0 = count }
            _ = try? db.scalarInt("PRAGMA max_page_count = \(count)")
        }
        #expect(recorder.flush())
        #expect(pages.withLock { $0 } > 0)
        let padding = String(repeating: "x", count: 3_000)
        for i in 0..<40 {
            var j = job("during-\(i)")
            j.error = padding
            recorder.record(j)
            recorder.flush()
        }
        #expect(recorder.isDegraded)
        let health = recorder.health
        #expect(health.state == .degraded)
        #expect(health.lastError?.contains("full") == true, "\(health.lastError ?? "nil")")
        #expect(health.bufferedJobs > 0)
        #expect(recorder.writeFailureCount >= 2)
        // One line for the whole run of failures, not one per attempt.
        #expect(log.matching("failed").count == 1, "\(log.lines.withLock { $0 })")
        // Rows not yet written are still readable.
        #expect(try recorder.job(id: "during-39")?.error == padding)

        recorder.core.onWriterThread { db in _ = try? db.scalarInt("PRAGMA max_page_count = 1000000") }
        #expect(recorder.flush())
        #expect(!recorder.isDegraded)
        #expect(recorder.health.state == .ok && recorder.health.bufferedJobs == 0)
        #expect(recorder.health.lastError != nil)
        #expect(try recorder.rowCount(table: "jobs") == 41)
        #expect(try recorder.totals().jobs == 41)
        #expect(log.matching("succeed again").count == 1)
    }

    @Test func aDeletedDatabaseIsRecreatedWithItsSchemaAndGetsTheNewRows() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("gone.sqlite")
        let log = Lines()
        let recorder = try Recorder(path: path, log: log.sink)
        defer { recorder.close() }
        recorder.record(job("old"))
        #expect(recorder.flush())
        #expect(unlink(path) == 0)
        recorder.record(job("new-1"))
        recorder.record(job("new-2"))
        #expect(recorder.flush())
        #expect(recorder.flush())
        #expect(access(path, F_OK) == 0)
        #expect(log.matching("deleted or replaced").count == 1)
        #expect(!recorder.isDegraded)
        // Read through a connection of our own: the file at the path, not the recorder's.
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("SELECT count(*) FROM jobs WHERE id LIKE 'new-%'") == 2)
        #expect(try db.scalarInt("SELECT count(*) FROM jobs WHERE id = 'old'") == 0)
        #expect(try db.scalarInt("PRAGMA user_version") == RecorderSchema.currentVersion)
        #expect(try recorder.job(id: "new-2") != nil)
    }

    @Test func aReplacedDatabaseIsFollowed() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("valet.sqlite")
        let recorder = try Recorder(path: path, log: { _, _ in })
        defer { recorder.close() }
        recorder.record(job("first"))
        #expect(recorder.flush())
        do {
            let other = try Recorder(path: dir.file("other.sqlite"), log: { _, _ in })
            other.record(job("from-backup"))
            other.close()
        }
        #expect(rename(dir.file("other.sqlite"), path) == 0)
        recorder.record(job("after"))
        #expect(recorder.flush())
        #expect(recorder.flush())
        #expect(try recorder.job(id: "from-backup") != nil)
        #expect(try recorder.job(id: "after") != nil)
        #expect(try recorder.job(id: "first") == nil)
    }

    @Test func closingCheckpointsSoTheMainFileAloneHoldsEverything() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("valet.sqlite")
        let recorder = try Recorder(path: path)
        for i in 0..<20 { recorder.record(job("j-\(i)")) }
        #expect(recorder.flush())
        #expect(recorder.databaseBytes > 0)
        recorder.close()
        #expect(access(path + "-wal", F_OK) != 0, "the write-ahead log is left behind")
        #expect(shell("cp '\(path)' '\(dir.file("copy.sqlite"))'").status == 0)
        let copy = try SQLiteConnection(path: dir.file("copy.sqlite"), readOnly: true)
        #expect(try copy.scalarInt("SELECT count(*) FROM jobs") == 20)
        #expect(try copy.scalarInt("SELECT sum(jobs) FROM job_totals") == 20)
    }

    @Test func aReadOnlyDatabaseIsRefusedAtStartup() throws {
        // chmod does not stop root; only run where it does.
        guard geteuid() != 0 else { return }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("ro.sqlite")
        Recorder.closeAfterCreating(path)
        #expect(chmod(path, 0o444) == 0)
        #expect(throws: RecorderError.self) { _ = try Recorder(path: path) }
    }

    @Test func failureLogSummarisesOnceAMinute() {
        var log = WriteFailureLog(summaryInterval: 60)
        #expect(log.failed("disk full", now: 0, bufferedJobs: 1) != nil)
        #expect(log.failed("disk full", now: 1, bufferedJobs: 2) == nil)
        #expect(log.failed("disk full", now: 59, bufferedJobs: 3) == nil)
        let summary = log.failed("disk full", now: 61, bufferedJobs: 4)
        #expect(summary?.contains("3 more write failures") == true, "\(summary ?? "nil")")
        #expect(log.failed("disk full", now: 62, bufferedJobs: 4) == nil)
        #expect(log.succeeded(now: 70, written: 4)?.contains("after 5 failures") == true)
        #expect(log.succeeded(now: 71, written: 0) == nil)
        #expect(log.failed("again", now: 72, bufferedJobs: 0) != nil)
    }
}

extension Recorder {
    fileprivate static func closeAfterCreating(_ path: String) {
        (try? Recorder(path: path))?.close()
    }
}
