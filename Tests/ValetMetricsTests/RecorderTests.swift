// The recorder against real SQLite files: round trips, totals, history, retention, drops, schema versions.
import CSQLite
import Synchronization
import Locks
import Testing
@testable import ValetMetrics

private func job(
    _ id: String, status: JobRecord.Status = .completed, finishReason: String? = "stop",
    prompt: Int = 10, completion: Int = 5, finishedAt: Double = MetricsClock.unixSeconds()
) -> JobRecord {
    JobRecord(
        id: id, model: "smollm2", priority: "normal", status: status,
        finishReason: status == .completed ? finishReason : nil,
        promptTokens: prompt, completionTokens: completion, costBlocks: 2,
        enqueuedAt: finishedAt - 1, admittedAt: status == .completed ? finishedAt - 0.9 : nil,
        firstTokenAt: status == .completed ? finishedAt - 0.5 : nil, finishedAt: finishedAt,
        error: status == .completed ? nil : "why: \(status.rawValue)")
}

@Suite("Recorder")
struct RecorderTests {
    @Test func roundTripJobsTotalsAndHistory() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("nested/deeper/valet.sqlite")
        let now = MetricsClock.unixSeconds()
        let jobs = [
            job("chatcmpl-1", finishReason: "stop", prompt: 11, completion: 7, finishedAt: now),
            job("chatcmpl-2", finishReason: "length", prompt: 20, completion: 16, finishedAt: now),
            job("chatcmpl-3", status: .queueFull, prompt: 30, completion: 0, finishedAt: now),
            job("cmpl-4", status: .cancelled, prompt: 5, completion: 2, finishedAt: now),
        ]
        do {
            let recorder = try Recorder(path: path)
            for j in jobs { recorder.record(j) }
            // A repeated id must be neither stored twice nor counted twice.
            recorder.record(job("chatcmpl-1", finishReason: "length", prompt: 999, finishedAt: now))
            for i in 0..<5 {
                recorder.record(QueueSample(time: now - 10 + Double(i), queued: i, running: 1, usedBlocks: 2 * i, totalBlocks: 64,
                                            cachedBlocks: 10 + i))
            }
            #expect(recorder.flush())

            #expect(try recorder.job(id: "chatcmpl-1") == jobs[0])
            #expect(try recorder.job(id: "chatcmpl-3") == jobs[2])
            #expect(try recorder.job(id: "cmpl-4")?.error == "why: cancelled")
            #expect(try recorder.job(id: "nope") == nil)
            #expect(try recorder.job(id: "' OR 1=1 --") == nil)

            let totals = try recorder.totals()
            #expect(totals.jobs == 4)
            #expect(totals.promptTokens == 66)
            #expect(totals.completionTokens == 25)
            #expect(totals.byStatus == ["completed": 2, "queue_full": 1, "cancelled": 1])
            #expect(totals.byFinishReason == ["stop": 1, "length": 1])

            let history = try recorder.queueHistory(since: now - 8)
            #expect(history.map(\.queued) == [2, 3, 4])
            #expect(history.first == QueueSample(time: now - 8, queued: 2, running: 1, usedBlocks: 4, totalBlocks: 64,
                                                 cachedBlocks: 12))
            #expect(try recorder.integrityCheck() == "ok")
            recorder.close()
            #expect(!recorder.flush())
            #expect(throws: RecorderError.closed) { try recorder.totals() }
        }
        // Reopening keeps everything and does not re-run migrations.
        let reopened = try Recorder(path: path)
        #expect(try reopened.job(id: "chatcmpl-2") == jobs[1])
        #expect(try reopened.totals().jobs == 4)
        #expect(try reopened.rowCount(table: "jobs") == 4)
        reopened.close()
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("PRAGMA user_version") == RecorderSchema.currentVersion)
        #expect(try db.scalarText("PRAGMA journal_mode") == "wal")
    }

    @Test func retentionPrunesOldRowsButKeepsTotals() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(
            path: dir.file("valet.sqlite"), options: RecorderOptions(retention: 3_600, pruneInterval: 0))
        let now = MetricsClock.unixSeconds()
        recorder.record(job("old", finishedAt: now - 7_200))
        recorder.record(job("new", finishedAt: now - 60))
        recorder.record(QueueSample(time: now - 7_200, queued: 1, running: 0, usedBlocks: 0, totalBlocks: 8))
        recorder.record(QueueSample(time: now - 60, queued: 2, running: 0, usedBlocks: 0, totalBlocks: 8))
        recorder.record(LockWaitSample(time: now - 7_200, lock: "scheduler", waitSeconds: 0.01))
        recorder.record(LockWaitSample(time: now - 60, lock: "scheduler", waitSeconds: 0.02))
        #expect(recorder.flush())
        #expect(try recorder.job(id: "old") == nil)
        #expect(try recorder.job(id: "new") != nil)
        #expect(try recorder.queueHistory(since: 0).map(\.queued) == [2])
        #expect(try recorder.lockWaits(since: 0).map(\.waitSeconds) == [0.02])
        // All-time totals survive pruning.
        #expect(try recorder.totals().jobs == 2)
        #expect(try recorder.integrityCheck() == "ok")
        recorder.close()
    }

    @Test func fullSampleBufferDropsAndCountsButNeverDropsJobs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(
            path: dir.file("valet.sqlite"),
            options: RecorderOptions(flushInterval: 1, batchSize: 1_000_000, sampleCapacity: 10))
        let now = MetricsClock.unixSeconds()
        for i in 0..<1_000 {
            recorder.record(QueueSample(time: now, queued: i, running: 0, usedBlocks: 0, totalBlocks: 1))
            recorder.record(job("job-\(i)", finishedAt: now))
        }
        #expect(recorder.flush())
        let written = try recorder.rowCount(table: "queue_samples")
        #expect(recorder.droppedCount > 0)
        #expect(Int(recorder.droppedCount) + written == 1_000)
        #expect(try recorder.rowCount(table: "jobs") == 1_000)
        #expect(try recorder.totals().jobs == 1_000)
        recorder.close()
    }

    @Test func aVersionOneDatabaseIsMigratedAndItsRowsReadCachedTokensZero() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("old.sqlite")
        let now = MetricsClock.unixSeconds()
        do {
            // What a Valet from before the prefix cache left behind: schema 1 with a row and its totals.
            let db = try SQLiteConnection(path: path, readOnly: false)
            try db.execute(RecorderSchema.migrations[0])
            try db.execute("PRAGMA user_version = 1")
            try db.execute("""
                INSERT INTO jobs (id, model, priority, status, finish_reason, prompt_tokens, completion_tokens,
                                  cost_blocks, enqueued_at, finished_at)
                VALUES ('old-1', 'm', 'normal', 'completed', 'stop', 30, 4, 3, \(now - 2), \(now - 1))
                """)
            try db.execute("INSERT INTO job_totals VALUES ('completed', 'stop', 1, 30, 4)")
            try db.execute("INSERT INTO queue_samples VALUES (\(now - 1), 1, 1, 3, 64)")
        }
        let recorder = try Recorder(path: path)
        let old = try recorder.job(id: "old-1")
        #expect(old?.promptTokens == 30 && old?.cachedTokens == 0)
        var fresh = job("new-1", prompt: 40, finishedAt: now)
        fresh.cachedTokens = 32
        recorder.record(fresh)
        #expect(recorder.flush())
        #expect(try recorder.job(id: "new-1") == fresh)
        let totals = try recorder.totals()
        #expect(totals.jobs == 2 && totals.promptTokens == 70 && totals.cachedTokens == 32)
        #expect(try recorder.queueHistory(since: now - 10).map(\.cachedBlocks) == [0])
        recorder.close()
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("PRAGMA user_version") == RecorderSchema.currentVersion)
        #expect(RecorderSchema.currentVersion == 4)
    }

    @Test func aVersionOneDatabaseGainsJobKindsAndStaysReadable() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("v1.sqlite")
        do {
            // The database as the first schema left it, with a chat and a completion row.
            let db = try SQLiteConnection(path: path, readOnly: false)
            try db.execute(RecorderSchema.migrations[0])
            try db.execute("PRAGMA user_version = 1")
            for id in ["chatcmpl-old", "cmpl-old"] {
                try db.execute("""
                    INSERT INTO jobs (id, model, priority, status, finish_reason, prompt_tokens, completion_tokens,
                                      cost_blocks, enqueued_at, finished_at)
                    VALUES ('\(id)', 'm', 'normal', 'completed', 'stop', 3, 4, 1, 10, 11)
                    """)
            }
        }
        let recorder = try Recorder(path: path)
        #expect(try recorder.job(id: "chatcmpl-old")?.kind == "chat")
        #expect(try recorder.job(id: "cmpl-old")?.kind == "completion")
        #expect(try recorder.job(id: "cmpl-old")?.completionTokens == 4)
        // Rows from before constraints were recorded had none.
        #expect(try recorder.job(id: "chatcmpl-old")?.constraint == "none")
        var embedding = job("embd-1", completion: 0)
        embedding.kind = "embedding"
        recorder.record(embedding)
        var forced = job("chatcmpl-tools", completion: 9)
        forced.constraint = "tools"
        recorder.record(forced)
        #expect(recorder.flush())
        #expect(try recorder.job(id: "embd-1") == embedding)
        #expect(try recorder.job(id: "chatcmpl-tools")?.constraint == "tools")
        recorder.close()
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("PRAGMA user_version") == RecorderSchema.currentVersion)
    }

    @Test func newerSchemaIsRefusedWithAClearError() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("future.sqlite")
        do {
            let db = try SQLiteConnection(path: path, readOnly: false)
            try db.execute("PRAGMA user_version = 99")
        }
        #expect(throws: RecorderError.unsupportedSchemaVersion(found: 99, supported: RecorderSchema.currentVersion)) {
            _ = try Recorder(path: path)
        }
    }

    @Test func unwritableLocationIsAnError() {
        #expect(throws: RecorderError.self) {
            _ = try Recorder(path: "/proc/valet-cannot-exist/valet.sqlite")
        }
    }

    @Test func queueSamplerPolicy() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let recorder = try Recorder(path: dir.file("valet.sqlite"))
        defer { recorder.close() }
        let sampler = QueueSampler(recorder: recorder, interval: 1, minimumSpacing: 0.1)
        typealias Load = QueueSampler.Load
        let a = Load(queued: 1, running: 1, usedBlocks: 4, totalBlocks: 8)
        let b = Load(queued: 2, running: 1, usedBlocks: 4, totalBlocks: 8)
        #expect(sampler.observe(a, now: 100.0)?.queued == 1)   // first observation records
        #expect(sampler.observe(a, now: 100.05) == nil)        // unchanged
        #expect(sampler.observe(b, now: 100.05) == nil)        // changed, but too soon: held back
        #expect(sampler.tick(now: 100.08) == nil)
        #expect(sampler.tick(now: 100.11)?.queued == 2)       // held-back change lands on the next tick
        #expect(sampler.tick(now: 100.5) == nil)               // nothing new, interval not reached
        #expect(sampler.tick(now: 101.2)?.time == 101.2)       // periodic
        #expect(sampler.observe(a, now: 101.35)?.queued == 1)  // change after spacing records at once
    }

    @Test func durationFlags() {
        #expect(RecorderOptions.parseDuration("7d") == 604_800)
        #expect(RecorderOptions.parseDuration("12h") == 43_200)
        #expect(RecorderOptions.parseDuration("30m") == 1_800)
        #expect(RecorderOptions.parseDuration("90s") == 90)
        #expect(RecorderOptions.parseDuration("250ms") == 0.25)
        #expect(RecorderOptions.parseDuration("1.5") == 1.5)
        #expect(RecorderOptions.parseDuration("off") == 0)
        #expect(RecorderOptions.parseDuration("-3d") == nil)
        #expect(RecorderOptions.parseDuration("soon") == nil)
        #expect(RecorderOptions.parseDuration("") == nil)
        #expect(RecorderOptions(retention: 0).retention == nil)
        #expect(RecorderOptions(flushInterval: 5).flushInterval == 1)
    }
}
