// One-line logs to stderr (Glibc's `stderr` global isn't concurrency-safe in Swift 6; write(2) is).
import Foundation

public enum Log {
    public static func info(_ message: String) { emit("info", message) }
    public static func warning(_ message: String) { emit("warning", message) }
    public static func error(_ message: String) { emit("error", message) }
    /// Off unless VALET_LOG_LEVEL=debug: per-request lines would flood stderr under load.
    public static let debugEnabled = ProcessInfo.processInfo.environment["VALET_LOG_LEVEL"]?.lowercased() == "debug"
    public static func debug(_ message: String) { if debugEnabled { emit("debug", message) } }

    private static func emit(_ level: String, _ message: String) {
        let stamp = Date().formatted(.iso8601)
        let line = Array("\(stamp) \(level) \(message)\n".utf8)
        line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
