// Whether the recorder is keeping up with its database: the `recorder` object of `/v1/metrics`.

public struct RecorderHealth: Sendable, Equatable, Encodable {
    public enum State: String, Sendable, Encodable {
        /// The last write reached the database.
        case ok
        /// Writes are failing; job rows wait in memory and are written once the database accepts them again.
        case degraded
    }

    public var state: State
    /// Unix seconds when the current state began: the recorder's start, the first failure, or the recovery.
    public var since: Double
    /// The most recent write error, kept after a recovery so an operator can still read what happened.
    @ExplicitNull public var lastError: String?
    @ExplicitNull public var lastErrorAt: Double?
    /// Failed write attempts since start.
    public var writeErrors: UInt64
    /// Job rows recorded but not yet committed.
    public var bufferedJobs: Int
    /// Main file plus write-ahead log, in bytes.
    public var databaseBytes: Int

    public init(
        state: State, since: Double, lastError: String? = nil, lastErrorAt: Double? = nil, writeErrors: UInt64 = 0,
        bufferedJobs: Int = 0, databaseBytes: Int = 0
    ) {
        self.state = state
        self.since = since
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.writeErrors = writeErrors
        self.bufferedJobs = bufferedJobs
        self.databaseBytes = databaseBytes
    }

    enum CodingKeys: String, CodingKey {
        case state, since
        case lastError = "last_error"
        case lastErrorAt = "last_error_at"
        case writeErrors = "write_errors"
        case bufferedJobs = "buffered_jobs"
        case databaseBytes = "database_bytes"
    }
}
