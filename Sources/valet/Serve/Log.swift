// One-line logs to stderr, as text or JSON, filtered by level (Glibc's `stderr` global isn't concurrency-safe in
// Swift 6; write(2) is, and one write per line keeps lines whole when threads log at once).
import Foundation
import Inference
import Locks

public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, warning, error

    public var name: String { rawValue }

    public init?(name: String) {
        self.init(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased())
    }

    private var rank: Int { LogLevel.allCases.firstIndex(of: self) ?? 0 }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

public enum Log {
    private static let settings = Locked<(level: LogLevel, format: LogFormat)>(
        (LogLevel(name: ProcessInfo.processInfo.environment["VALET_LOG_LEVEL"] ?? "") ?? .info,
         LogFormat(rawValue: ProcessInfo.processInfo.environment["VALET_LOG_FORMAT"]?.lowercased() ?? "") ?? .text))

    /// Set once from the serve configuration; before that, VALET_LOG_LEVEL and VALET_LOG_FORMAT apply.
    public static func configure(level: LogLevel, format: LogFormat) {
        settings.withLock { $0 = (level, format) }
    }

    public static func enabled(_ level: LogLevel) -> Bool { level >= settings.withLock { $0.level } }

    public static func trace(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.trace, message, fields) }
    public static func debug(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.debug, message, fields) }
    public static func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.info, message, fields) }
    public static func warning(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.warning, message, fields) }
    public static func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.error, message, fields) }

    public static func emit(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        emit(level, message, fields: fields.map { ($0.key, $0.value) })
    }

    public static func emit(_ level: LogLevel, _ message: String, fields: [(String, String)]) {
        let (threshold, format) = settings.withLock { $0 }
        guard level >= threshold else { return }
        let line = render(level, message, fields: fields, format: format, time: Date())
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// The line as written, newline included. Text: `TIME LEVEL message key=value …`; JSON: one object with `ts`,
    /// `level`, `msg` and the fields.
    static func render(_ level: LogLevel, _ message: String, fields: [(String, String)], format: LogFormat,
                       time: Date) -> String {
        let stamp = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        switch format {
        case .text:
            let extra = fields.map { " \($0.0)=\(textValue($0.1))" }.joined()
            return "\(stamp) \(level.name) \(message)\(extra)\n"
        case .json:
            var parts = ["\"ts\":\(jsonString(stamp))", "\"level\":\(jsonString(level.name))", "\"msg\":\(jsonString(message))"]
            parts += fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }
            return "{" + parts.joined(separator: ",") + "}\n"
        }
    }

    /// Values with spaces or quotes are quoted, so a text line still splits into key=value pairs.
    private static func textValue(_ value: String) -> String {
        value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) ? jsonString(value) : value
    }

    static func jsonString(_ s: String) -> String {
        JSONText.quoted(s)
    }
}
