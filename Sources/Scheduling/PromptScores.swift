// Prompt scores kept with a cached block, so a prompt-scoring job (echo with logprobs) can take the block from the
// cache and still report every position: a score depends only on the tokens up to it, which the block's hash names.
import Inference

/// One prompt position's score: the logprob of its token given everything before it, and the most likely tokens
/// there (best first).
struct PositionScore: Sendable, Equatable {
    var logprob: Float
    var top: [TokenScore]
}

/// The scores of a block's tokens, in block order; nil for the prompt's first token (nothing predicts it).
struct BlockScores: Sendable, Equatable {
    /// Alternatives kept per position: requests asking for up to this many can use the block.
    var top: Int
    var positions: [PositionScore?]

    /// Alternatives a scoring job computes whatever it asks for (the completions API allows up to 5), so its
    /// blocks serve every later request; the top-N of a row is a prefix of its top-5 (a total order decides ties).
    static let kept = 5
}
