// The narrow interface between the engine loop and a model: one batched forward step over many sequences.

/// Which logits rows a sequence wants back from a step.
public enum LogitRows: Sendable, Equatable {
    case none
    /// The row after the last fed token (to sample the next one).
    case last
    /// A row after every fed token (prompt scoring).
    case all
    /// Not logits: the final normalized hidden state (the model's width, not the vocabulary's) after every fed
    /// token, for embeddings.
    case hiddenStates
}

public struct StepSequence: Sendable {
    /// Physical KV blocks owned by this sequence, in position order; must cover `position + tokens.count`.
    public var blockTable: [Int32]
    /// Tokens already in this sequence's cache; the fed tokens take positions `position...`.
    public var position: Int
    /// A prompt chunk or a single decode token.
    public var tokens: [Int32]
    public var logits: LogitRows
    /// Fed positions below this already hold exactly the K/V this step would compute, in blocks other sequences may
    /// share: they are fed for their logits only and never written.
    public var writesFrom: Int

    public init(blockTable: [Int32], position: Int, tokens: [Int32], logits: LogitRows, writesFrom: Int = 0) {
        self.blockTable = blockTable
        self.position = position
        self.tokens = tokens
        self.logits = logits
        self.writesFrom = writesFrom
    }
}

/// A model that advances many sequences in one step. Only the engine loop's thread calls `step`.
public protocol StepEngine: AnyObject, Sendable {
    var vocabSize: Int { get }
    /// Tokens per KV block (16).
    var blockSize: Int { get }
    /// Blocks in the shared KV pool.
    var totalBlocks: Int { get }
    /// The longest sequence the model supports.
    var contextLength: Int { get }
    /// Runs one forward pass; calls `emit(sequenceIndex, tokenIndex, row)` for every requested row (logits, or
    /// hidden states for a `.hiddenStates` sequence).
    /// The buffer is only valid during the call and may be modified in place (sampling does).
    func step(_ batch: [StepSequence], emit: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws
    /// Copies the first `tokens` rows of every layer's keys and values from block `source` to block `destination`
    /// (a cached prefix seeding a sequence's own block). Only the engine loop's thread calls it, between steps.
    func copyRows(from source: Int32, to destination: Int32, tokens: Int)
}

/// Turns tokens back into bytes; the tokenizer conforms, a fake does in scheduler tests.
public protocol TokenDecoding: Sendable {
    /// The raw bytes a token stands for (special tokens: their text).
    func bytes(of token: Int32) -> [UInt8]
    /// Tokens that end generation (EOS, EOT, `<|im_end|>`, …).
    var endOfGenerationTokens: Set<Int32> { get }
}
