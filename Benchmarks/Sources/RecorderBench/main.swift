// Recorder throughput for `make bench`: job rows per second through the real Recorder (bounded buffer, writer
// thread, batched WAL transactions) into a real SQLite file, plus the enqueue cost on the caller's thread.
import Foundation
import ValetMetrics

struct Options {
    var db = ""
    var rows = 100_000
    var json = false
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("valet-recorderbench: \(message)\n".utf8))
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    while let arg = args.popFirst() {
        switch arg {
        case "--db":
            guard let path = args.popFirst() else { fail("--db needs a path") }
            o.db = path
        case "--rows":
            guard let text = args.popFirst(), let rows = Int(text) else { fail("--rows needs a number") }
            o.rows = rows
        case "--json": o.json = true
        case "-h", "--help":
            print("usage: valet-recorderbench --db PATH [--rows N] [--json]   (PATH must not exist yet)")
            exit(0)
        default: fail("unknown argument \(arg)")
        }
    }
    if o.db.isEmpty { fail("--db PATH is required") }
    if FileManager.default.fileExists(atPath: o.db) { fail("\(o.db) exists; give a fresh path") }
    if o.rows < 1 { fail("--rows must be positive") }
    return o
}

let options = parseOptions()
let recorder: Recorder
do {
    recorder = try Recorder(path: options.db)
} catch {
    fail("cannot open \(options.db): \(error)")
}

// Rows shaped like real traffic: every status, both finish reasons, mixed priorities and token counts.
let statuses: [JobRecord.Status] = [.completed, .completed, .completed, .completed, .completed, .completed,
                                    .queueFull, .queueTimeout, .cancelled, .completed]
let priorities = ["normal", "normal", "normal", "high", "low"]
let base = Date().timeIntervalSince1970
let clock = ContinuousClock()

let start = clock.now
for i in 0..<options.rows {
    let status = statuses[i % statuses.count]
    let t = base + Double(i) * 0.001
    let admitted = status == .completed || status == .cancelled
    recorder.record(JobRecord(
        id: "cmpl-bench\(i)", model: "SmolLM2-135M-Instruct.Q4_1", priority: priorities[i % priorities.count],
        status: status, finishReason: status == .completed ? (i % 3 == 0 ? "stop" : "length") : nil,
        promptTokens: 16 + i % 300, completionTokens: admitted ? i % 64 : 0, costBlocks: 1 + i % 23,
        enqueuedAt: t, admittedAt: admitted ? t + 0.01 : nil, firstTokenAt: admitted ? t + 0.05 : nil,
        finishedAt: t + 0.8, error: status == .completed ? nil : "bench: \(status.rawValue)"))
}
let enqueued = clock.now
recorder.flush()
let flushed = clock.now
let dropped = recorder.droppedCount
let failures = recorder.writeFailureCount
recorder.close()

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

let total = seconds(flushed - start)
let rate = Double(options.rows) / total
let enqueueNs = seconds(enqueued - start) / Double(options.rows) * 1e9
if options.json {
    let doc: [String: Any] = [
        "rows": options.rows, "seconds": total, "rows_per_second": rate, "enqueue_ns_per_row": enqueueNs,
        "dropped": dropped, "write_failures": failures,
    ]
    let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
} else {
    print(String(format: "%d job rows in %.3f s: %.0f rows/s (enqueue %.0f ns/row), dropped %llu, write failures %llu",
                 options.rows, total, rate, enqueueNs, dropped, failures))
}
