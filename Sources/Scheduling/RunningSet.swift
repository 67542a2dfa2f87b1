// The sequences the engine loop holds, and the one order in which they give way to priority work.
import Inference

struct RunningSet {
    struct Sequence {
        var job: SchedulerJob
        let blocks: [Int32]
        /// Tokens of `job.generation.tokens` already in this sequence's KV blocks.
        var cached = 0
        /// Leading blocks already in the prefix cache's index (hits, or registered once full).
        var indexedBlocks = 0
        /// Tokens of the leading blocks shared from the cache: their K/V is never written by this sequence.
        var shared = 0
        /// Scores of prompt positions with the alternatives the cache keeps, for the blocks this sequence fills.
        var promptScores: [PositionScore?]?
        /// Admission order within the loop: "newest" means the highest.
        let order: UInt64
        var promptLogprobs: [PromptTokenLogprob?]?
        /// An embedding job's pooled hidden states so far; rebuilt from scratch if the job is preempted.
        var embedding: PooledEmbedding?
        /// Gave its decode row to higher-priority work; keeps its blocks and cache, waits in the lot for a row.
        var suspended = false

        var priority: Priority { job.request.priority }
        var generation: JobProgress { job.generation! }
    }

    private(set) var items: [Sequence] = []
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { items.isEmpty }
    var indices: Range<Int> { items.indices }

    /// Sequences holding a decode row (running and not suspended).
    var activeRows: Int { items.reduce(0) { $0 + ($1.suspended ? 0 : 1) } }

    subscript(i: Int) -> Sequence {
        get { items[i] }
        _modify { yield &items[i] }
    }

    /// `cachedBlocks` leading blocks came from the prefix cache, and `seededRows` more rows were copied into the
    /// next (own) block: their tokens count as computed.
    mutating func add(_ job: SchedulerJob, blocks: [Int32], cachedBlocks: Int = 0, seededRows: Int = 0,
                      blockSize: Int = 16) {
        var sequence = Sequence(job: job, blocks: blocks, order: nextOrder)
        sequence.shared = cachedBlocks * blockSize
        // A job owing prompt scores feeds the last shared position again (never writing it): its logits score the
        // first token after the shared blocks.
        sequence.cached = job.owesPromptScores && cachedBlocks > 0 ? sequence.shared - 1 : sequence.shared + seededRows
        sequence.indexedBlocks = cachedBlocks
        sequence.embedding = job.request.embedding.map { PooledEmbedding(pooling: $0, length: job.request.promptTokens.count) }
        items.append(sequence)
        nextOrder += 1
    }

    mutating func remove(at i: Int) -> Sequence { items.remove(at: i) }

    func index(of seq: UInt64) -> Int? { items.firstIndex { $0.job.seq == seq } }

    /// Sequences below `priority`, in the order they give way: lowest class first, newest first within a class
    /// (the newest has the least work to lose and the shortest wait so far).
    func victims(below priority: Priority, includingSuspended: Bool = true) -> [Int] {
        items.indices
            .filter { items[$0].priority < priority && (includingSuspended || !items[$0].suspended) }
            .sorted { a, b in
                let pa = items[a].priority, pb = items[b].priority
                return pa != pb ? pa < pb : items[a].order > items[b].order
            }
    }
}
