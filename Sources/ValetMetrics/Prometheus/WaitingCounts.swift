// Jobs parked in the lot at each priority, passed by name so that no caller's ordering of priorities can put a
// count under the wrong `priority` label.

/// Parked jobs per priority, for `valet_requests_waiting` and `/v1/metrics`' `queued_by_priority`.
public struct WaitingCounts: Sendable, Equatable {
    public var low: Int
    public var normal: Int
    public var high: Int
    public var critical: Int

    public init(low: Int = 0, normal: Int = 0, high: Int = 0, critical: Int = 0) {
        self.low = low
        self.normal = normal
        self.high = high
        self.critical = critical
    }

    /// All parked jobs.
    public var total: Int { low + normal + high + critical }

    /// The `priority` label values, in the order of `counts`.
    static let labels = ["low", "normal", "high", "critical"]

    /// The counts in the order of `labels`.
    var counts: [Int] { [low, normal, high, critical] }
}
