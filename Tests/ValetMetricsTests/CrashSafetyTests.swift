// kill -9 under load: a child process records jobs through Valet's Recorder and is SIGKILLed; the database must
// open cleanly and hold every job recorded more than one flush interval before the kill.
import Locks
import TestSupport
import Testing
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

private let stressDatabaseVariable = "VALET_RECORDER_STRESS_DB"
private let stressLogVariable = "VALET_RECORDER_STRESS_LOG"
private let flushInterval = 0.25

@Suite("Recorder crash safety")
struct CrashSafetyTests {
    /// The child side. Runs only when the parent test re-executes this test binary with the variables set.
    @Test(.enabled(if: getenv(stressDatabaseVariable) != nil))
    func recorderStressChild() throws {
        let database = String(cString: getenv(stressDatabaseVariable))
        let log = String(cString: getenv(stressLogVariable))
        try RecorderStress.run(databasePath: database, logPath: log, jobsPerSecond: 5_000, flushInterval: flushInterval)
    }

    @Test(.enabled(if: getenv(stressDatabaseVariable) == nil))
    func killNineUnderLoadLosesNothingOlderThanOneFlushInterval() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let database = dir.file("crash.sqlite")
        let logPath = dir.file("crash.log")

        let pid = try spawnSelf(
            filter: "recorderStressChild",
            environment: ["\(stressDatabaseVariable)=\(database)", "\(stressLogVariable)=\(logPath)"])
        // Let it run under load for a while: at least 1.5 s and a few thousand jobs (bounded wait).
        var waited = 0
        while waited < 30_000 && !(waited >= 1_500 && readLog(logPath).count >= 3_000) {
            sleepMilliseconds(50)
            waited += 50
        }
        let killedAt = MetricsClock.unixSeconds()
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status & 0x7f == SIGKILL, "the child should have died from SIGKILL, status \(status)")

        let recorded = readLog(logPath)
        try #require(recorded.count >= 1_000, "child recorded only \(recorded.count) jobs")

        let recorder = try Recorder(path: database)
        defer { recorder.close() }
        #expect(try recorder.integrityCheck() == "ok")
        let rows = try recorder.rowCount(table: "jobs")
        // Every job old enough must be there.
        let due = recorded.filter { $0.time < killedAt - flushInterval }
        try #require(!due.isEmpty)
        var missing: [Int] = []
        for entry in due where try recorder.job(id: "stress-\(entry.index)") == nil {
            missing.append(entry.index)
        }
        #expect(missing.isEmpty, "\(missing.count) of \(due.count) due jobs missing, first \(missing.prefix(5))")
        // Batches commit whole and in order: the table holds exactly a prefix of the recorded jobs...
        #expect(rows >= due.count)
        #expect(try recorder.job(id: "stress-\(rows - 1)") != nil)
        #expect(try recorder.job(id: "stress-\(rows)") == nil)
        // ...and the totals table moved in the same transactions.
        #expect(try recorder.totals().jobs == rows)
        #expect(try recorder.rowCount(table: "queue_samples") > 0)
        print("crash test: \(recorded.count) jobs recorded, \(rows) committed, \(due.count) were due")
    }
}

private struct LogEntry {
    var index: Int
    var time: Double
}

/// Parses the child's "<index> <unix seconds>" lines, ignoring a torn last line.
private func readLog(_ path: String) -> [LogEntry] {
    guard let file = fopen(path, "r") else { return [] }
    defer { fclose(file) }
    var entries: [LogEntry] = []
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    while getline(&line, &capacity, file) > 0 {
        let text = String(cString: line!)
        guard text.hasSuffix("\n") else { break }
        let parts = text.dropLast().split(separator: " ")
        guard parts.count == 2, let index = Int(parts[0]), let time = Double(parts[1]) else { break }
        entries.append(LogEntry(index: index, time: time))
    }
    free(line)
    return entries
}

/// Re-executes this test binary running only the Swift Testing test `filter`, with extra environment variables.
private func spawnSelf(filter: String, environment: [String]) throws -> pid_t {
    var buffer = [CChar](repeating: 0, count: 4_096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    try #require(length > 0)
    let executable = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let arguments = [executable, "--testing-library", "swift-testing", "--filter", filter]
    var env: [String] = []
    var cursor = environ
    while let entry = cursor.pointee {
        env.append(String(cString: entry))
        cursor += 1
    }
    env += environment
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    // Keep the child's test-runner chatter out of this run's output.
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    try #require(rc == 0, "posix_spawn failed: \(rc)")
    return pid
}
