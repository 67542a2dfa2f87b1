// The scheduler's knobs; `valet serve` exposes each as a flag and reads its default from here.
import Inference

public struct SchedulerConfig: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Priorities, aging, bounded overtaking, eviction and preemption.
        case parkingLot = "parking-lot"
        /// Plain first-come admission: the A/B baseline.
        case fifo
    }

    public var kind: Kind
    /// KV blocks the scheduler may hand out; nil (or more than the engine has) means all of the engine's pool.
    public var totalBlocks: Int?
    /// Tokens per block; the engine's value wins if they differ (block tables are the engine's).
    public var blockSize: Int
    /// Longest sequence (prompt + max_tokens); nil means the engine's context length.
    public var ctxSize: Int?
    /// Sequences running at once (one decode row each per step).
    public var maxBatch: Int
    /// Prompt tokens prefilled per step, across all prefilling sequences.
    public var prefillChunk: Int
    /// Jobs that may wait in the lot.
    public var maxQueue: Int
    /// Default seconds a job may wait in the lot (a request may override).
    public var queueTimeout: Double
    /// A high/critical waiter older than this may preempt lower-priority running work.
    public var preemptAfter: Double
    /// A waiting job rises one priority class per this many seconds; 0 disables aging.
    public var agingSeconds: Double
    /// How many times a parked job that does not fit may be passed by later, smaller ones.
    public var maxOvertakes: Int
    /// Full KV blocks stay cached by content after their job, and later prompts with the same prefix share them.
    public var prefixCache: Bool
    /// Names the model whose KV the cache holds; enters every first block's hash.
    public var modelIdentity: String

    public init(
        kind: Kind = .parkingLot, totalBlocks: Int? = nil, blockSize: Int = 16, ctxSize: Int? = nil,
        maxBatch: Int = 8, prefillChunk: Int = 256, maxQueue: Int = 64, queueTimeout: Double = 30,
        preemptAfter: Double = 2, agingSeconds: Double = 10, maxOvertakes: Int = 4,
        prefixCache: Bool = true, modelIdentity: String = ""
    ) {
        self.kind = kind
        self.totalBlocks = totalBlocks
        self.blockSize = blockSize
        self.ctxSize = ctxSize
        self.maxBatch = maxBatch
        self.prefillChunk = prefillChunk
        self.maxQueue = maxQueue
        self.queueTimeout = queueTimeout
        self.preemptAfter = preemptAfter
        self.agingSeconds = agingSeconds
        self.maxOvertakes = maxOvertakes
        self.prefixCache = prefixCache
        self.modelIdentity = modelIdentity
    }

    /// The values actually used against `engine`: clamped to what it has, nonsense replaced by the minimum.
    func resolved(for engine: any StepEngine) -> SchedulerConfig {
        var c = self
        c.totalBlocks = Swift.max(0, Swift.min(totalBlocks ?? engine.totalBlocks, engine.totalBlocks))
        c.blockSize = Swift.max(1, engine.blockSize)
        c.ctxSize = Swift.max(1, Swift.min(ctxSize ?? engine.contextLength, engine.contextLength))
        c.maxBatch = Swift.max(1, maxBatch)
        c.prefillChunk = Swift.max(1, prefillChunk)
        c.maxQueue = Swift.max(0, maxQueue)
        c.queueTimeout = Swift.max(0, queueTimeout)
        c.preemptAfter = Swift.max(0, preemptAfter)
        c.agingSeconds = Swift.max(0, agingSeconds)
        c.maxOvertakes = Swift.max(0, maxOvertakes)
        return c
    }
}
