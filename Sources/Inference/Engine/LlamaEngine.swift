// The llama model behind the StepEngine protocol: validates a batch, maps it to slots and runs one forward pass.

public final class LlamaEngine: StepEngine, @unchecked Sendable {
    // Only the engine loop's thread calls `step`; everything else here is immutable.
    public let model: LlamaModel
    public let cache: KVBlockPool
    public var config: LlamaConfig { model.config }
    public var vocabSize: Int { model.config.vocabSize }
    public var blockSize: Int { KVBlockPool.blockSize }
    public var totalBlocks: Int { cache.blockCount }
    public var contextLength: Int { model.config.contextLength }

    /// `kvCacheTokens` is rounded up to whole blocks.
    public init(model file: GGUFFile, threads: Int, kvCacheTokens: Int) throws {
        model = try LlamaModel(file: file, threads: threads)
        let blocks = (kvCacheTokens + KVBlockPool.blockSize - 1) / KVBlockPool.blockSize
        cache = try KVBlockPool(blocks: blocks, layers: model.config.layers, kvDim: model.config.kvDim)
    }

    public func step(_ batch: [StepSequence], emit: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        var slots: [LlamaModel.Slot] = []
        var logitSlots: [Int] = []
        var logitOwners: [(sequence: Int, token: Int)] = []
        var hiddenSlots: [Int] = []
        var hiddenOwners: [(sequence: Int, token: Int)] = []
        for (i, seq) in batch.enumerated() {
            try validate(seq, index: i)
            for (j, token) in seq.tokens.enumerated() {
                if seq.logits == .hiddenStates {
                    hiddenSlots.append(slots.count)
                    hiddenOwners.append((i, j))
                } else if seq.logits == .all || (seq.logits == .last && j == seq.tokens.count - 1) {
                    logitSlots.append(slots.count)
                    logitOwners.append((i, j))
                }
                slots.append(.init(token: token, position: seq.position + j, sequence: i,
                                   writesKV: seq.position + j >= seq.writesFrom))
            }
        }
        model.forward(slots, blockTables: batch.map(\.blockTable), cache: cache, logitSlots: logitSlots,
                      hiddenSlots: hiddenSlots,
                      emitHidden: { i, row in emit(hiddenOwners[i].sequence, hiddenOwners[i].token, row) }) { i, row in
            emit(logitOwners[i].sequence, logitOwners[i].token, row)
        }
    }

    public func copyRows(from source: Int32, to destination: Int32, tokens: Int) {
        cache.copyRows(from: Int(source), to: Int(destination), tokens: tokens)
    }

    private func validate(_ seq: StepSequence, index: Int) throws(EngineError) {
        let end = seq.position + seq.tokens.count
        guard !seq.tokens.isEmpty else { throw EngineError("sequence \(index): no tokens to feed") }
        guard seq.position >= 0, end <= contextLength else {
            throw EngineError("sequence \(index): positions \(seq.position)..<\(end) exceed the context length \(contextLength)")
        }
        guard seq.blockTable.count * blockSize >= end else {
            throw EngineError("sequence \(index): \(seq.blockTable.count) blocks cannot hold \(end) tokens")
        }
        for block in seq.blockTable.prefix((end + blockSize - 1) / blockSize) where block < 0 || Int(block) >= totalBlocks {
            throw EngineError("sequence \(index): block \(block) is outside the pool of \(totalBlocks)")
        }
        for token in seq.tokens where token < 0 || Int(token) >= vocabSize {
            throw EngineError("sequence \(index): token \(token) is outside the vocabulary of \(vocabSize)")
        }
    }
}
