// One row of `queue_samples`: the scheduler's load at an instant.

public struct QueueSample: Sendable, Equatable {
    /// Unix seconds.
    public var time: Double
    public var queued: Int
    public var running: Int
    public var usedBlocks: Int
    public var totalBlocks: Int
    /// Free blocks holding cached prefixes (evictable; not in `usedBlocks`).
    public var cachedBlocks: Int

    public init(time: Double, queued: Int, running: Int, usedBlocks: Int, totalBlocks: Int, cachedBlocks: Int = 0) {
        self.time = time
        self.queued = queued
        self.running = running
        self.usedBlocks = usedBlocks
        self.totalBlocks = totalBlocks
        self.cachedBlocks = cachedBlocks
    }
}

extension QueueSample: Codable {
    enum CodingKeys: String, CodingKey {
        case time, queued, running
        case usedBlocks = "used_blocks"
        case totalBlocks = "total_blocks"
        case cachedBlocks = "cached_blocks"
    }
}
