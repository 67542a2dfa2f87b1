// Live scheduler state for /v1/metrics and /metrics; every field is read from the running scheduler.
import Inference

public struct SchedulerCounters: Sendable, Equatable {
    /// First admissions (a preempted job's resumption is not counted again).
    public var admitted = 0
    public var rejectedTooLarge = 0
    public var rejectedQueueFull = 0
    public var rejectedShuttingDown = 0
    public var rejectedInvalid = 0
    public var timedOut = 0
    public var evicted = 0
    public var preempted = 0
    /// Running sequences that gave their decode row to higher-priority work but kept their blocks (no recompute).
    public var suspended = 0
    /// Client cancels (disconnects), parked or running.
    public var cancelled = 0
    /// Ended by shutdown after having been accepted.
    public var shutDown = 0
    /// Finished normally (stop or length).
    public var completed = 0
    public var failed = 0

    public var rejected: Int { rejectedTooLarge + rejectedQueueFull + rejectedShuttingDown + rejectedInvalid }

    /// Every count under its `/v1/metrics` name.
    public var byName: [String: Int] {
        ["admitted": admitted, "rejected": rejected, "timed_out": timedOut, "evicted": evicted,
         "preempted": preempted, "suspended": suspended, "cancelled": cancelled, "completed": completed,
         "failed": failed, "shut_down": shutDown]
    }

    /// Rejections keyed by reason label: too_large, queue_full, shutting_down, invalid.
    public var rejectedByReason: [String: Int] {
        ["too_large": rejectedTooLarge, "queue_full": rejectedQueueFull,
         "shutting_down": rejectedShuttingDown, "invalid": rejectedInvalid]
    }
}

public struct SchedulerStats: Sendable, Equatable {
    /// "parking-lot" or "fifo".
    public var schedulerType: String
    /// Sequences holding a decode row in the engine loop (`active_workers`).
    public var running: Int
    /// Jobs waiting in the lot (`queued_tasks`), suspended sequences (waiting for a row, blocks kept) included.
    public var queued: Int
    /// Parked jobs by the priority they asked for.
    public var queuedByPriority: [Priority: Int]
    public var totalBlocks: Int
    /// Blocks not reserved by any running sequence (`available_capacity`).
    public var availableBlocks: Int
    public var blockSize: Int
    /// Sequences in the most recent engine step.
    public var batchSize: Int
    public var counters: SchedulerCounters

    public var blocksInUse: Int { totalBlocks - availableBlocks }
}
