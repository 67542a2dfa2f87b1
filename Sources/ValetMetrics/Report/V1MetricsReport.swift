// The JSON document of `GET /v1/metrics`: live scheduler stats under the field names dashboards and clients already
// read, plus all-time totals and recent queue history from SQLite.

/// Fill it from the scheduler's stats and the recorder, then encode it (e.g. with `JSONEncoder`).
public struct V1MetricsReport: Encodable, Sendable {
    /// The admission policy the scheduler runs (`parking_lot` or `fifo`).
    public var schedulerType: String
    /// Jobs running in the engine.
    public var activeWorkers: Int
    /// Jobs parked in the lot.
    public var queuedTasks: Int
    /// KV-cache blocks free for admission.
    public var availableCapacity: Int
    /// KV-cache blocks the scheduler manages.
    public var totalCapacity: Int
    /// Of the available blocks, those holding cached prefixes nobody references (evicted on demand).
    public var cachedCapacity: Int
    /// The prefix cache's live figures.
    public var prefixCache: PrefixCacheReport
    /// Parked jobs by priority name (`low`, `normal`, `high`, `critical`; all four always present).
    public var queuedByPriority: [String: Int]
    /// Sequences in the engine's current step.
    public var batchSize: Int
    /// The scheduler's event counts since this process started, from its live state: `admitted`, `rejected`,
    /// `timed_out`, `evicted`, `preempted`, `suspended`, `cancelled`, `completed`, `failed`, `shut_down`.
    public var counters: [String: Int]
    /// Rejections since start by reason (`too_large`, `queue_full`, `shutting_down`, `invalid`).
    public var rejectedByReason: [String: Int]
    /// All-time totals from SQLite (`Recorder.totals()`); nil (JSON `null`) when the server keeps no record.
    @ExplicitNull public var totals: JobTotals?
    /// false when the server runs with `--no-recorder`: totals are null and history is empty.
    public var recorderEnabled: Bool
    /// Samples lost to a full recorder buffer since start.
    public var recorderDroppedTotal: UInt64
    /// Whether the recorder keeps up with its database (`ok` or `degraded`, the last error, since when); nil
    /// (JSON `null`) when the server keeps no record.
    @ExplicitNull public var recorder: RecorderHealth?
    /// The `?window=` the history covers, in seconds.
    public var windowSeconds: Double
    /// Queue samples of the window, oldest first (`Recorder.queueHistory(since:)`).
    public var history: [QueueSample]

    public init(
        activeWorkers: Int, waiting: WaitingCounts, availableCapacity: Int, totalCapacity: Int, batchSize: Int,
        totals: JobTotals?, recorderDroppedTotal: UInt64, windowSeconds: Double, history: [QueueSample],
        schedulerType: String = "parking_lot", recorderEnabled: Bool = true,
        counters: [String: Int] = [:], rejectedByReason: [String: Int] = [:],
        prefixCache: PrefixCacheReport = PrefixCacheReport(enabled: false), recorder: RecorderHealth? = nil
    ) {
        self.recorder = recorder
        self.prefixCache = prefixCache
        self.cachedCapacity = prefixCache.cachedBlocks
        self.counters = counters
        self.rejectedByReason = rejectedByReason
        self.schedulerType = schedulerType
        self.activeWorkers = activeWorkers
        self.queuedTasks = waiting.total
        self.availableCapacity = availableCapacity
        self.totalCapacity = totalCapacity
        self.queuedByPriority = Dictionary(uniqueKeysWithValues: zip(WaitingCounts.labels, waiting.counts))
        self.batchSize = batchSize
        self.totals = totals
        self.recorderEnabled = recorderEnabled
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
        case cachedCapacity = "cached_capacity"
        case prefixCache = "prefix_cache"
        case queuedByPriority = "queued_by_priority"
        case batchSize = "batch_size"
        case counters
        case rejectedByReason = "rejected_by_reason"
        case totals
        case recorderEnabled = "recorder_enabled"
        case recorderDroppedTotal = "recorder_dropped_total"
        case recorder
        case windowSeconds = "window_seconds"
        case history
    }

    /// Parses `?window=` (seconds, 1 s to 7 days); nil or junk gives the default 300 s.
    public static func window(fromQuery value: String?) -> Double {
        guard let value, let seconds = Double(value), seconds.isFinite, seconds > 0 else { return 300 }
        return min(max(seconds, 1), 7 * 86_400)
    }
}
