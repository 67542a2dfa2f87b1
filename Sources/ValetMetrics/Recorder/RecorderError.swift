// Errors the recorder reports instead of crashing: SQLite failures, a database from a newer Valet, setup problems.

public enum RecorderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// SQLite returned `code` while doing `context`.
    case sqlite(code: Int32, message: String, context: String)
    /// The database was written by a newer Valet (its `user_version` is above what this build knows).
    case unsupportedSchemaVersion(found: Int, supported: Int)
    /// The parent directory of the database could not be created.
    case cannotCreateDirectory(path: String, errno: Int32)
    /// A file could not be opened.
    case cannotOpenFile(path: String, errno: Int32)
    /// The database (or the directory that must hold its write-ahead log) cannot be written by this process.
    case notWritable(path: String, reason: String)
    /// The writer thread could not be started.
    case thread(code: Int32)
    /// The recorder was closed.
    case closed

    public var description: String {
        switch self {
        case let .sqlite(code, message, context):
            "SQLite error \(code) while \(context): \(message)"
        case let .unsupportedSchemaVersion(found, supported):
            "database schema version \(found) is newer than this Valet supports (\(supported)); use a newer Valet or another --db"
        case let .cannotCreateDirectory(path, errno):
            "cannot create directory \(path) (errno \(errno))"
        case let .cannotOpenFile(path, errno):
            "cannot open \(path) (errno \(errno))"
        case let .notWritable(path, reason):
            "\(path) is not writable (\(reason))"
        case let .thread(code):
            "cannot start the recorder writer thread (error \(code))"
        case .closed:
            "the recorder is closed"
        }
    }
}
