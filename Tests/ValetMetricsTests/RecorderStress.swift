// A writer under steady load for the kill -9 test (CrashSafetyTests runs this test binary as the child):
// it records jobs until it is killed and logs, after each record() returns, which job it was and when.
import Locks
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum RecorderStress {
    /// Records job `stress-0`, `stress-1`, … at about `jobsPerSecond` (plus a queue sample every 10 ms) into the
    /// database at `databasePath`, forever. After each `record` returns it appends "<index> <unix seconds>\n" to
    /// `logPath` with one `write(2)`, which survives the process being killed. Returns only on a setup error.
    static func run(
        databasePath: String, logPath: String, jobsPerSecond: Int = 5_000, flushInterval: Double = 0.25
    ) throws(RecorderError) {
        let recorder = try Recorder(path: databasePath, options: RecorderOptions(flushInterval: flushInterval))
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0o644)
        guard log >= 0 else { throw RecorderError.cannotOpenFile(path: logPath, errno: errno) }
        let burst = max(1, jobsPerSecond / 1_000)  // jobs per millisecond
        var index = 0
        var lastSample = 0.0
        while true {
            for _ in 0..<burst {
                let now = MetricsClock.unixSeconds()
                recorder.record(JobRecord(
                    id: "stress-\(index)", model: "stress", priority: "normal", status: .completed,
                    finishReason: index % 2 == 0 ? "stop" : "length", promptTokens: 12, completionTokens: 34,
                    costBlocks: 3, enqueuedAt: now - 0.5, admittedAt: now - 0.4, firstTokenAt: now - 0.3,
                    finishedAt: now))
                let line = "\(index) \(MetricsClock.unixSeconds())\n"
                _ = line.withCString { write(log, $0, strlen($0)) }
                index += 1
                if now - lastSample >= 0.01 {
                    lastSample = now
                    recorder.record(QueueSample(time: now, queued: index % 7, running: 4, usedBlocks: 40, totalBlocks: 64))
                }
            }
            usleep(1_000)
        }
    }
}
