// The JSON document of `GET /v1/metrics`: live scheduler stats under the field names the original design
// promised, plus all-time totals and recent queue history from SQLite.

/// Fill it from the scheduler's stats and the recorder, then encode it (e.g. with `JSONEncoder`).
public struct V1MetricsReport: Encodable, Sendable {
    /// Always `parking_lot` for Valet's scheduler.
    public var schedulerType: String
    /// Jobs running in the engine.
    public var activeWorkers: Int
    /// Jobs parked in the lot.
    public var queuedTasks: Int
    /// KV-cache blocks free for admission.
    public var availableCapacity: Int
    /// KV-cache blocks the scheduler manages.
    public var totalCapacity: Int
    /// Parked jobs by priority name (`low`, `normal`, `high`, `critical`; all four always present).
    public var queuedByPriority: [String: Int]
    /// Sequences in the engine's current step.
    public var batchSize: Int
    /// All-time totals from SQLite (`Recorder.totals()`).
    public var totals: JobTotals
    /// Samples lost to a full recorder buffer since start.
    public var recorderDroppedTotal: UInt64
    /// The `?window=` the history covers, in seconds.
    public var windowSeconds: Double
    /// Queue samples of the window, oldest first (`Recorder.queueHistory(since:)`).
    public var history: [QueueSample]

    /// - Parameter waitingByPriority: parked jobs indexed low, normal, high, critical.
    public init(
        activeWorkers: Int, waitingByPriority: [Int], availableCapacity: Int, totalCapacity: Int, batchSize: Int,
        totals: JobTotals, recorderDroppedTotal: UInt64, windowSeconds: Double, history: [QueueSample],
        schedulerType: String = "parking_lot"
    ) {
        self.schedulerType = schedulerType
        self.activeWorkers = activeWorkers
        self.queuedTasks = waitingByPriority.reduce(0, +)
        self.availableCapacity = availableCapacity
        self.totalCapacity = totalCapacity
        var byPriority: [String: Int] = [:]
        for (index, name) in ["low", "normal", "high", "critical"].enumerated() {
            byPriority[name] = index < waitingByPriority.count ? waitingByPriority[index] : 0
        }
        self.queuedByPriority = byPriority
        self.batchSize = batchSize
        self.totals = totals
        self.recorderDroppedTotal = recorderDroppedTotal
        self.windowSeconds = windowSeconds
        self.history = history
    }

    enum CodingKeys: String, CodingKey {
        case schedulerType = "scheduler_type"
        case activeWorkers = "active_workers"
        case queuedTasks = "queued_tasks"
        case availableCapacity = "available_capacity"
        case totalCapacity = "total_capacity"
        case queuedByPriority = "queued_by_priority"
        case batchSize = "batch_size"
        case totals
        case recorderDroppedTotal = "recorder_dropped_total"
        case windowSeconds = "window_seconds"
        case history
    }

    /// Parses `?window=` (seconds, 1 s to 7 days); nil or junk gives the default 300 s.
    public static func window(fromQuery value: String?) -> Double {
        guard let value, let seconds = Double(value), seconds.isFinite, seconds > 0 else { return 300 }
        return min(max(seconds, 1), 7 * 86_400)
    }
}
