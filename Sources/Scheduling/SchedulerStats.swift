// Live scheduler state for /v1/metrics and /metrics; every field is read from the running scheduler.
import Inference

public struct SchedulerCounters: Sendable, Equatable {
    /// First admissions (a preempted job's resumption is not counted again).
    public var admitted = 0
    public var preempted = 0
    /// Running sequences that gave their decode row to higher-priority work but kept their blocks (no recompute).
    public var suspended = 0
    /// Jobs that ended, by how: the only record of endings, so every view below is a function of it.
    public private(set) var ends: [JobEnd: Int] = [:]

    public init() {}

    public mutating func count(_ end: JobEnd) { ends[end, default: 0] += 1 }

    public subscript(_ end: JobEnd) -> Int { ends[end] ?? 0 }

    /// Normal finishes (stop or length).
    public var completed: Int { ends.reduce(0) { if case .finished = $1.key { $0 + $1.value } else { $0 } } }
    /// Every rejection, evictions included: each one is a 429/400/503 the client got instead of an answer.
    public var rejected: Int { ends.reduce(0) { if case .rejected = $1.key { $0 + $1.value } else { $0 } } }

    /// Every count under its `/v1/metrics` name.
    public var byName: [String: Int] {
        ["admitted": admitted, "rejected": rejected, "timed_out": self[.failed(.queueTimeout)],
         "evicted": self[.rejected(.evicted)], "preempted": preempted, "suspended": suspended,
         "cancelled": self[.failed(.cancelled)], "completed": completed, "failed": self[.failed(.engineError)],
         "shut_down": self[.failed(.shutdown)]]
    }

    /// Rejections keyed by reason label; they sum to `rejected`.
    public var rejectedByReason: [String: Int] {
        Dictionary(uniqueKeysWithValues: JobEnd.Rejection.allCases.map { ($0.rawValue, self[.rejected($0)]) })
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
    /// Blocks not reserved by any running sequence (`available_capacity`), cached evictable ones included.
    public var availableBlocks: Int
    public var blockSize: Int
    /// Sequences in the most recent engine step.
    public var batchSize: Int
    public var counters: SchedulerCounters
    public var prefixCache: PrefixCacheStats

    public var blocksInUse: Int { totalBlocks - availableBlocks }
}

/// The prefix cache as the engine loop last published it.
public struct PrefixCacheStats: Sendable, Equatable {
    public var enabled: Bool
    /// Cached blocks no running sequence references: evictable on demand, so also counted as available capacity.
    public var cachedBlocks = 0
    /// Prompt tokens looked up at first admission (a resumption after preemption is not a query again).
    public var queryTokens = 0
    /// Of those, tokens found cached.
    public var hitTokens = 0
    /// Cached blocks evicted to make room.
    public var evictions = 0

    public init(enabled: Bool, cachedBlocks: Int = 0, queryTokens: Int = 0, hitTokens: Int = 0, evictions: Int = 0) {
        self.enabled = enabled
        self.cachedBlocks = cachedBlocks
        self.queryTokens = queryTokens
        self.hitTokens = hitTokens
        self.evictions = evictions
    }
}
