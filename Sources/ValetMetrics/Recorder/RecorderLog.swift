// Where the recorder's own messages go: the serving process hands in its logger, so they share its format.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum RecorderLogLevel: String, Sendable {
    case info, warning, error
}

/// Receives one line per message (no trailing newline). Called on the writer thread, never on the request path.
public typealias RecorderLogSink = @Sendable (RecorderLogLevel, String) -> Void

public enum RecorderLog {
    /// For a recorder used without a logger (tests, benchmarks): `level message` on stderr.
    public static let standardError: RecorderLogSink = { level, message in
        let line = Array("\(level.rawValue) \(message)\n".utf8)
        line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
