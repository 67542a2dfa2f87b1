// Hyperparameters of a llama-architecture model, read from GGUF metadata.

public struct LlamaConfig: Sendable, Equatable {
    public var layers: Int
    public var dim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var feedForward: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var rmsEpsilon: Float
    public var ropeFreqBase: Float
    /// Leading dimensions of each head that RoPE rotates.
    public var ropeDimension: Int
    /// Linear RoPE scaling: positions are divided by this (1 = none).
    public var ropeLinearFactor: Float

    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }

    public init(file: GGUFFile) throws(GGUFError) {
        let arch = file.string("general.architecture") ?? "(none)"
        guard arch == "llama" else { throw GGUFError(file: file.path, "unsupported architecture \(arch)") }
        func req(_ key: String) throws(GGUFError) -> Int {
            guard let v = file.int("llama." + key), v > 0 else {
                throw GGUFError(file: file.path, "missing or invalid metadata 'llama.\(key)'")
            }
            return v
        }
        layers = try req("block_count")
        dim = try req("embedding_length")
        heads = try req("attention.head_count")
        kvHeads = file.int("llama.attention.head_count_kv") ?? heads
        feedForward = try req("feed_forward_length")
        contextLength = try req("context_length")
        headDim = file.int("llama.attention.key_length") ?? dim / heads
        rmsEpsilon = Float(file.double("llama.attention.layer_norm_rms_epsilon") ?? 1e-5)
        ropeFreqBase = Float(file.double("llama.rope.freq_base") ?? 10_000)
        ropeDimension = file.int("llama.rope.dimension_count") ?? headDim
        vocabSize = file.int("llama.vocab_size") ?? file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0

        let scaling = file.string("llama.rope.scaling.type") ?? "none"
        let factor = Float(file.double("llama.rope.scaling.factor") ?? 1)
        switch scaling {
        case "none": ropeLinearFactor = 1
        case "linear": ropeLinearFactor = factor > 0 ? factor : 1
        default: throw GGUFError(file: file.path, "unsupported rope scaling type '\(scaling)'")
        }

        guard vocabSize > 0 else { throw GGUFError(file: file.path, "cannot tell the vocabulary size") }
        guard heads % kvHeads == 0 else {
            throw GGUFError(file: file.path, "head count \(heads) is not a multiple of the KV head count \(kvHeads)")
        }
        guard headDim % 2 == 0, ropeDimension % 2 == 0, ropeDimension <= headDim else {
            throw GGUFError(file: file.path, "rope dimension \(ropeDimension) does not fit head size \(headDim)")
        }
        for (what, n) in [("embedding length", dim), ("feed-forward length", feedForward), ("query size", qDim)]
        where n % 32 != 0 {
            throw GGUFError(file: file.path, "\(what) \(n) is not a multiple of 32")
        }
    }
}
