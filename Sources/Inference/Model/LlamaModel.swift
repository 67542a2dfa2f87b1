// The llama forward pass, top to bottom in one place: every token of a step (any mix of sequences, prompt chunks
// and decode tokens) goes through each weight matrix together, so the weights are read once per step.
import CKernels
import Foundation

public final class LlamaModel: @unchecked Sendable {
    // Mutable scratch is only touched inside `forward`, which the single engine thread calls.
    public let file: GGUFFile
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let pool: ThreadPool
    /// Per RoPE pair i: freq_base^(-2i/ropeDim), divided by the linear factor and any per-frequency factor.
    private let ropeFrequencies: [Float]
    private var scratch: Scratch

    /// One token of a step: what it is, where it sits, and whose cache it attends to.
    public struct Slot: Sendable {
        public var token: Int32
        public var position: Int
        /// Index into the step's block tables.
        public var sequence: Int
        /// false: the cache already holds this position's K/V (a shared block); it is read, never written.
        public var writesKV: Bool

        public init(token: Int32, position: Int, sequence: Int, writesKV: Bool = true) {
            self.token = token
            self.position = position
            self.sequence = sequence
            self.writesKV = writesKV
        }
    }

    public init(file: GGUFFile, threads: Int) throws(GGUFError) {
        self.file = file
        config = try LlamaConfig(file: file)
        let w = try LlamaWeights(file: file, config: config)
        weights = w
        pool = ThreadPool(threads: threads)
        let c = config
        ropeFrequencies = (0..<c.ropeDimension / 2).map { i in
            let base = Float(pow(Double(c.ropeFreqBase), -2.0 * Double(i) / Double(c.ropeDimension)))
            return base / c.ropeLinearFactor / (w.ropeFrequencyFactors?[i] ?? 1)
        }
        scratch = Scratch(config: c, tokens: 16, threads: pool.threadCount)
    }

    deinit { scratch.deallocate() }

    /// Runs the slots through the model, writing their K/V into `cache`, and calls `emit(i, logits)` for each
    /// index i of `logitSlots` (distinct slot indices, in order), and `emitHidden(i, state)` with the final
    /// normalized hidden state (what the output matrix would multiply) for each index of `hiddenSlots`; the two
    /// lists must not share a slot. Block tables must cover every slot's position.
    public func forward(_ slots: [Slot], blockTables: [[Int32]], cache: KVBlockPool, logitSlots: [Int],
                        hiddenSlots: [Int] = [],
                        emitHidden: (Int, UnsafeMutableBufferPointer<Float>) -> Void = { _, _ in },
                        emit: (Int, UnsafeMutableBufferPointer<Float>) -> Void)
    {
        let c = config, w = weights, n = slots.count
        if n == 0 { return }
        if scratch.capacity < n {
            scratch.deallocate()
            scratch = Scratch(config: c, tokens: max(n, scratch.capacity * 2), threads: pool.threadCount)
        }
        let s = scratch
        let dim = c.dim, hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim, eps = c.rmsEpsilon

        // Block tables flattened so the attention kernel can take a plain pointer per sequence.
        var tableStart: [Int] = []
        var tables: [Int32] = []
        for table in blockTables {
            tableStart.append(tables.count)
            tables.append(contentsOf: table)
        }

        // Embeddings and each token's RoPE angles (the same for every layer).
        let pairs = c.ropeDimension / 2
        for (t, slot) in slots.enumerated() {
            w.tokenEmbedding.dequantizeRow(Int(slot.token), into: s.x.row(t))
            let cs = s.rope + t * pairs * 2
            for i in 0..<pairs {
                let angle = Float(slot.position) * ropeFrequencies[i]
                cs[2 * i] = cos(angle)
                cs[2 * i + 1] = sin(angle)
            }
        }

        tables.withUnsafeBufferPointer { tablesBuffer in
            let tablesBase = tablesBuffer.baseAddress!
            for (l, layer) in w.layers.enumerated() {
                // Attention block: x += Wo · attention(rope(Wq·n), rope(Wk·n), Wv·n) with n = rmsnorm(x).
                pool.parallelFor(n) { range in
                    for t in range {
                        if l > 0 { add(s.x.row(t), s.residual + t * dim, dim) }
                        valet_rmsnorm(s.x.row(t), layer.attentionNorm, s.xb.row(t), Int32(dim), eps)
                    }
                    s.xb.quantize(range)
                }
                MatMul.run([.init(layer.q, out: s.q, stride: qDim), .init(layer.k, out: s.k, stride: kvDim),
                            .init(layer.v, out: s.v, stride: kvDim)], input: s.xb, columns: n, pool: pool)

                let keys = cache.keys(layer: l), values = cache.values(layer: l)
                let blockSize = KVBlockPool.blockSize, blockStride = cache.blockStride
                pool.parallelFor(n) { range in
                    for t in range {
                        let cs = s.rope + t * pairs * 2
                        rotate(s.q + t * qDim, heads: c.heads, headDim: hd, pairs: pairs, cs)
                        rotate(s.k + t * kvDim, heads: c.kvHeads, headDim: hd, pairs: pairs, cs)
                        let slot = slots[t]
                        guard slot.writesKV else { continue }
                        let block = Int(tablesBase[tableStart[slot.sequence] + slot.position / blockSize])
                        let at = block * blockStride + (slot.position % blockSize) * kvDim
                        valet_f32_to_f16(s.k + t * kvDim, keys + at, Int32(kvDim))
                        valet_f32_to_f16(s.v + t * kvDim, values + at, Int32(kvDim))
                    }
                }

                // Every (token, head) pair is independent; each token sees its own sequence up to itself, which
                // makes a prompt chunk causal because all its K/V rows were written above.
                let scale = 1 / Float(hd).squareRoot()
                pool.forEachRange(n * c.heads) { items, thread in
                    let scores = s.scores + thread * c.contextLength
                    for item in items {
                        let t = item / c.heads, h = item % c.heads
                        let slot = slots[t]
                        valet_attention_f16(s.q + t * qDim, Int32(c.heads), Int32(c.kvHeads), Int32(hd),
                                            Int32(h), Int32(h + 1), keys, values,
                                            tablesBase + tableStart[slot.sequence], blockStride, Int32(blockSize),
                                            Int32(slot.position + 1), scale, scores, s.attention.row(t))
                    }
                }
                pool.parallelFor(n) { s.attention.quantize($0) }
                MatMul.run([.init(layer.o, out: s.residual, stride: dim)], input: s.attention, columns: n, pool: pool)

                // Feed-forward block: x += Wdown · (silu(Wgate·n) * Wup·n) with n = rmsnorm(x).
                pool.parallelFor(n) { range in
                    for t in range {
                        add(s.x.row(t), s.residual + t * dim, dim)
                        valet_rmsnorm(s.x.row(t), layer.ffnNorm, s.xb.row(t), Int32(dim), eps)
                    }
                    s.xb.quantize(range)
                }
                MatMul.run([.init(layer.gate, out: s.hidden.floats, stride: c.feedForward),
                            .init(layer.up, out: s.up, stride: c.feedForward)], input: s.xb, columns: n, pool: pool)
                pool.parallelFor(n) { range in
                    for t in range {
                        valet_swiglu(s.hidden.row(t), s.up + t * c.feedForward, Int32(c.feedForward))
                    }
                    s.hidden.quantize(range)
                }
                MatMul.run([.init(layer.down, out: s.residual, stride: dim)], input: s.hidden, columns: n, pool: pool)
            }
        }

        // Hidden states in f32, before the output matrix's activation quantization, so embeddings keep full precision.
        if !hiddenSlots.isEmpty {
            var state = [Float](repeating: 0, count: dim)
            state.withUnsafeMutableBufferPointer { out in
                for (i, t) in hiddenSlots.enumerated() {
                    add(s.x.row(t), s.residual + t * dim, dim)
                    valet_rmsnorm(s.x.row(t), w.outputNorm, out.baseAddress!, Int32(dim), eps)
                    emitHidden(i, out)
                }
            }
        }

        // Logits only for the rows asked for, a few at a time so a whole-prompt request stays small in memory.
        var done = 0
        while done < logitSlots.count {
            let count = min(Scratch.logitRows, logitSlots.count - done)
            for i in 0..<count {
                let t = logitSlots[done + i]
                add(s.x.row(t), s.residual + t * dim, dim)
                valet_rmsnorm(s.x.row(t), w.outputNorm, s.xb.row(i), Int32(dim), eps)
            }
            s.xb.quantize(0..<count)
            MatMul.run([.init(w.output, out: s.logits, stride: c.vocabSize)], input: s.xb, columns: count, pool: pool)
            for i in 0..<count {
                emit(done + i, UnsafeMutableBufferPointer(start: s.logits + i * c.vocabSize, count: c.vocabSize))
            }
            done += count
        }
    }
}

private func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { x[i] += y[i] }
}

/// RoPE as llama.cpp applies it to GGUF llama models: (x[2i], x[2i+1]) rotated by angle_i. The converter permuted
/// the Q/K weights so that adjacent pairs correspond to Hugging Face's rotate-half pairs.
private func rotate(_ v: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, pairs: Int, _ cs: UnsafePointer<Float>) {
    for h in 0..<heads {
        let p = v + h * headDim
        for i in 0..<pairs {
            let cosA = cs[2 * i], sinA = cs[2 * i + 1]
            let a = p[2 * i], b = p[2 * i + 1]
            p[2 * i] = a * cosA - b * sinA
            p[2 * i + 1] = a * sinA + b * cosA
        }
    }
}

/// Buffers for one step of up to `capacity` tokens.
private struct Scratch: @unchecked Sendable {
    static let logitRows = 16
    let capacity: Int
    let x, xb, attention, hidden: Activations
    let q, k, v, up, residual, rope, scores, logits: UnsafeMutablePointer<Float>

    init(config c: LlamaConfig, tokens: Int, threads: Int) {
        capacity = tokens
        x = Activations(width: c.dim, capacity: tokens)
        xb = Activations(width: c.dim, capacity: max(tokens, Self.logitRows))
        attention = Activations(width: c.qDim, capacity: tokens)
        hidden = Activations(width: c.feedForward, capacity: tokens)
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        q = buffer(tokens * c.qDim)
        k = buffer(tokens * c.kvDim)
        v = buffer(tokens * c.kvDim)
        up = buffer(tokens * c.feedForward)
        residual = buffer(tokens * c.dim)
        rope = buffer(tokens * c.ropeDimension)
        scores = buffer(threads * c.contextLength)
        logits = buffer(Self.logitRows * c.vocabSize)
    }

    func deallocate() {
        for a in [x, xb, attention, hidden] { a.deallocate() }
        for p in [q, k, v, up, residual, rope, scores, logits] { p.deallocate() }
    }
}
