// One job as the scheduler carries it between the lot and the engine loop (a value: whoever holds it owns it).
import Inference

struct SchedulerJob: Sendable {
    let seq: UInt64
    let request: GenerationRequest
    let onEvent: @Sendable (JobEvent) -> Void
    /// Blocks of the whole sequence (prompt plus generation), whether cached or not.
    let costBlocks: Int
    /// The request's max_tokens, capped so prompt + max_tokens fits the context.
    let maxTokens: Int
    let enqueuedMono: Double
    let enqueuedUnix: Double
    var admittedMono: Double?
    var admittedUnix: Double?
    var prefillDoneMono: Double?
    var firstTokenMono: Double?
    var firstTokenUnix: Double?
    var lastTokenMono: Double?
    var preemptions = 0
    /// Hashes of the full blocks of its history known so far (the prompt's at submit, generated ones as they fill);
    /// empty with the prefix cache off.
    var blockHashes: [BlockHash] = []
    /// The first block's parent (model and salt); nil with the prefix cache off.
    var hashRoot: BlockHash?
    /// Prompt tokens found cached at first admission (a resumption's hits are not counted again).
    var cachedTokens = 0
    /// Created at first admission; survives preemption so a resumed job continues exactly where it was.
    var generation: JobProgress?
}

struct JobProgress: Sendable {
    /// Prompt followed by every generated token: what a resumed job recomputes.
    var tokens: [Int32]
    var generated = 0
    var sampler: Sampler
    var text: TextStream
    var promptLogprobsSent = false
    /// This sequence's own constraint state (from the request's at first admission).
    var constraint: (any TokenConstraint)?
}

extension SchedulerJob {
    /// Leading full blocks it may take from the cache: never the block holding the last token it feeds (that
    /// token's logits are needed), and none for an embedding, which pools every position's hidden state and a cached
    /// block keeps only keys and values.
    func reusableBlocks(blockSize: Int) -> Int {
        if request.embedding != nil { return 0 }
        let tokens = generation?.tokens.count ?? request.promptTokens.count
        return Swift.min(blockHashes.count, Swift.max(0, tokens - 1) / blockSize)
    }

    /// Prompt logprobs are still owed: cached blocks serve it only with their scores.
    var owesPromptScores: Bool { request.promptLogprobs && !(generation?.promptLogprobsSent ?? false) }

    /// The alternatives per position a cached block's scores must hold for this job, or nil if it needs no scores.
    var scoresNeeded: Int? { owesPromptScores ? (request.logprobs ?? 0) : nil }

    /// The cached prefix it would start from now. An embedding takes no seeded rows either, for the same reason
    /// it takes no blocks.
    func match(in blocks: KVBlockManager, blockSize: Int) -> KVBlockManager.Match {
        let seedable = request.embedding == nil
        return blocks.match(blockHashes, limit: reusableBlocks(blockSize: blockSize), scoredTo: scoresNeeded,
                            tokens: seedable ? (generation?.tokens ?? request.promptTokens) : nil, root: hashRoot)
    }
}
