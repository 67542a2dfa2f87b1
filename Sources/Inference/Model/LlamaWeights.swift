// The weights of a llama model as zero-copy views into the mapped GGUF file (norm vectors copied as floats).

public struct LlamaWeights: Sendable {
    public struct Layer: Sendable {
        public let attentionNorm: [Float]
        public let q, k, v, o: QuantizedMatrix
        public let ffnNorm: [Float]
        public let gate, up, down: QuantizedMatrix
    }

    public let tokenEmbedding: QuantizedMatrix
    public let layers: [Layer]
    public let outputNorm: [Float]
    /// `output.weight`, or the token embedding when the file ties them.
    public let output: QuantizedMatrix
    /// Per-frequency RoPE divisors (`rope_freqs.weight`, Llama 3 style scaling), if the file has them.
    public let ropeFrequencyFactors: [Float]?

    public init(file: GGUFFile, config c: LlamaConfig) throws(GGUFError) {
        func matrix(_ name: String, rows: Int, columns: Int) throws(GGUFError) -> QuantizedMatrix {
            try QuantizedMatrix(file: file, name: name, rows: rows, columns: columns)
        }
        func vector(_ name: String, count: Int) throws(GGUFError) -> [Float] {
            let info = try file.tensor(name)
            guard info.elementCount == count else {
                throw GGUFError(file: file.path, tensor: name, "has \(info.elementCount) values, expected \(count)")
            }
            let m = try QuantizedMatrix(file: file, name: name)
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                m.dequantizeRow(0, into: buf.baseAddress!)
                n = count
            }
        }
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabSize, columns: c.dim)
        var layers: [Layer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            layers.append(Layer(
                attentionNorm: try vector(p + "attn_norm.weight", count: c.dim),
                q: try matrix(p + "attn_q.weight", rows: c.qDim, columns: c.dim),
                k: try matrix(p + "attn_k.weight", rows: c.kvDim, columns: c.dim),
                v: try matrix(p + "attn_v.weight", rows: c.kvDim, columns: c.dim),
                o: try matrix(p + "attn_output.weight", rows: c.dim, columns: c.qDim),
                ffnNorm: try vector(p + "ffn_norm.weight", count: c.dim),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForward, columns: c.dim),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForward, columns: c.dim),
                down: try matrix(p + "ffn_down.weight", rows: c.dim, columns: c.feedForward)))
        }
        self.layers = layers
        outputNorm = try vector("output_norm.weight", count: c.dim)
        output = file.hasTensor("output.weight")
            ? try matrix("output.weight", rows: c.vocabSize, columns: c.dim)
            : tokenEmbedding
        ropeFrequencyFactors = file.hasTensor("rope_freqs.weight")
            ? try vector("rope_freqs.weight", count: c.ropeDimension / 2)
            : nil
    }
}
