// Picks each next token from a logits row: bias, penalties, temperature, top-k/top-p/min-p, a seeded draw, logprobs.
//
// Order of operations (per token):
//  1. logit_bias is added to the raw logits.
//  2. Logprobs (when asked) are the log-softmax of those biased logits — what the model says, before any penalty,
//     temperature or constraint mask, which is what OpenAI-style clients compare across requests.
//  2b. A constraint's mask (structured output) sets every disallowed logit to -infinity, so nothing below can pick it.
//  3. Penalties: repetition (CTRL-style: divide a positive logit, multiply a negative one) over the last
//     `repetitionWindow` tokens of prompt + generated text, as llama.cpp's server does (`repeat_last_n` 64);
//     presence and frequency (OpenAI semantics) over the generated tokens only.
//  4. Temperature 0 → greedy (lowest index wins ties). Otherwise temperature scaling, then top-k, top-p, min-p
//     (the vLLM / HF order), then one draw from the kept tokens renormalized.

/// Made only by the sampler (hence no public init); the API reads it.
public struct TokenScore: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
}

public struct SampledToken: Sendable, Equatable {
    public var token: Int32
    /// log-softmax of the biased logits at the chosen token; nil when logprobs were not asked for.
    public var logprob: Float?
    /// The most likely tokens by the same measure, best first.
    public var top: [TokenScore]
}

public struct Sampler: Sendable {
    public static let repetitionWindow = 64

    public let parameters: SamplingParameters
    private var rng: Xoshiro256
    /// Ring of the last `repetitionWindow` tokens (prompt, then generated).
    private var recent: [Int32] = []
    private var recentNext = 0
    private var generatedCounts: [Int32: Int] = [:]

    public init(parameters: SamplingParameters, prompt: [Int32] = []) {
        self.parameters = parameters
        var system = SystemRandomNumberGenerator()
        rng = Xoshiro256(seed: parameters.seed ?? system.next())
        recent.reserveCapacity(Self.repetitionWindow)
        for t in prompt.suffix(Self.repetitionWindow) { remember(t) }
    }

    private mutating func remember(_ token: Int32) {
        if recent.count < Self.repetitionWindow {
            recent.append(token)
        } else {
            recent[recentNext] = token
            recentNext = (recentNext + 1) % Self.repetitionWindow
        }
    }

    /// Records a token as generated (sample does this itself; exposed for replaying forced tokens).
    public mutating func accept(_ token: Int32) {
        remember(token)
        generatedCounts[token, default: 0] += 1
    }

    /// Chooses the next token from `logits` (modified in place) and records it as generated.
    /// `topLogprobs`: nil → no logprobs; n → the chosen token's logprob plus the n best alternatives.
    /// `allowed`: a constraint's mask; tokens outside it are never chosen.
    public mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>, topLogprobs: Int? = nil,
                                allowed: TokenMask? = nil) -> SampledToken {
        let vocab = logits.count
        precondition(vocab > 0, "empty logits row")
        for (token, bias) in parameters.logitBias where token >= 0 && Int(token) < vocab {
            logits[Int(token)] += bias
        }
        var logNormalizer: Float = 0
        var top: [TokenScore] = []
        if let n = topLogprobs {
            logNormalizer = VectorMath.logSumExp(logits)
            if n > 0 {
                top = PartialSelection.top(n, of: logits).map {
                    TokenScore(token: Int32($0), logprob: logits[$0] - logNormalizer)
                }
            }
        }
        allowed?.apply(to: logits)
        let original = applyPenalties(logits)
        let chosen = choose(logits)
        let raw = original[chosen] ?? logits[chosen]
        accept(Int32(chosen))
        return SampledToken(
            token: Int32(chosen),
            logprob: topLogprobs == nil ? nil : raw - logNormalizer,
            top: top)
    }

    /// Applies the penalties in place; returns the pre-penalty values of the logits it changed.
    private func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>) -> [Int: Float] {
        let p = parameters
        let repetition = p.repetitionPenalty != 1 && p.repetitionPenalty > 0
        let countBased = p.presencePenalty != 0 || p.frequencyPenalty != 0
        guard repetition || countBased else { return [:] }
        var original: [Int: Float] = [:]
        if repetition {
            for t in Set(recent) where t >= 0 && Int(t) < logits.count {
                let i = Int(t)
                original[i] = logits[i]
                let v = logits[i]
                logits[i] = v > 0 ? v / p.repetitionPenalty : v * p.repetitionPenalty
            }
        }
        if countBased {
            for (t, c) in generatedCounts where t >= 0 && Int(t) < logits.count {
                let i = Int(t)
                if original[i] == nil { original[i] = logits[i] }
                logits[i] -= p.presencePenalty + p.frequencyPenalty * Float(c)
            }
        }
        return original
    }

    private mutating func choose(_ logits: UnsafeMutableBufferPointer<Float>) -> Int {
        let p = parameters
        if p.temperature <= 0 || p.topK == 1 {
            return Self.argmax(logits)
        }
        let invT = 1 / p.temperature
        let maxLogit = VectorMath.max(logits)
        guard maxLogit.isFinite else { return Self.argmax(logits) }
        if p.topK <= 0 && p.topP >= 1 && p.minP <= 0 {
            return drawFromAll(logits, maxLogit: maxLogit, invT: invT)
        }
        return drawFiltered(logits, maxLogit: maxLogit, invT: invT)
    }

    static func argmax(_ logits: UnsafeMutableBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<logits.count where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// Plain temperature sampling over the whole vocabulary: one vector pass for the normalizer, then a walk in
    /// 256-wide chunks that only expands the chunk holding the drawn mass.
    private mutating func drawFromAll(_ logits: UnsafeMutableBufferPointer<Float>, maxLogit: Float, invT: Float) -> Int {
        let n = logits.count
        let z = VectorMath.sumExp(logits, 0..<n, offset: maxLogit, scale: invT)
        let target = rng.nextUnit() * z
        var acc = 0.0
        var start = 0
        var lastNonZero = Self.argmax(logits)
        while start < n {
            let end = Swift.min(start + 256, n)
            let chunk = VectorMath.sumExp(logits, start..<end, offset: maxLogit, scale: invT)
            if acc + chunk > target {
                for i in start..<end {
                    let e = Double(VectorMath.exp((logits[i] - maxLogit) * invT))
                    if e > 0 { lastNonZero = i }
                    acc += e
                    if acc > target { return i }
                }
                // Rounding between the vector and scalar sums: settle on the chunk's last possible token.
                return lastNonZero
            }
            acc += chunk
            start = end
        }
        return lastNonZero
    }

    /// top-k / top-p / min-p: candidates come from a partial selection that widens (64, 256, …) only when the
    /// cut-off is not yet decided inside it, so a full sort of the vocabulary is never needed.
    private mutating func drawFiltered(_ logits: UnsafeMutableBufferPointer<Float>, maxLogit: Float, invT: Float) -> Int {
        let p = parameters
        let n = logits.count
        let truncatedByK = p.topK > 0
        var k = truncatedByK ? Swift.min(p.topK, n) : Swift.min(64, n)
        // Without top-k, top-p measures probability against the whole vocabulary.
        let fullNormalizer: Double? = (!truncatedByK && p.topP < 1)
            ? VectorMath.sumExp(logits, 0..<n, offset: maxLogit, scale: invT) : nil
        while true {
            let candidates = PartialSelection.top(k, of: logits)
            let weights = candidates.map { Double(VectorMath.exp((logits[$0] - maxLogit) * invT)) }
            var keep = candidates.count
            var decided = truncatedByK || k >= n
            if p.minP > 0 {
                // weights[0] is the most likely token's (relative weight 1); min-p is a ratio to it.
                let floor = Double(p.minP) * weights[0]
                if let cut = weights.firstIndex(where: { $0 < floor }) {
                    keep = cut
                    decided = true
                }
            }
            if p.topP < 1 {
                let z = fullNormalizer ?? weights.reduce(0, +)
                var cumulative = 0.0
                for i in 0..<keep {
                    cumulative += weights[i] / z
                    if cumulative >= Double(p.topP) {
                        keep = i + 1
                        decided = true
                        break
                    }
                }
            }
            if decided {
                keep = Swift.max(keep, 1)
                let total = weights[0..<keep].reduce(0, +)
                let target = rng.nextUnit() * total
                var acc = 0.0
                for i in 0..<keep {
                    acc += weights[i]
                    if acc > target { return candidates[i] }
                }
                return candidates[keep - 1]
            }
            k = Swift.min(n, k * 4)
        }
    }

    /// log-softmax of `logits` at `token` (prompt scoring; no bias, no penalties).
    public static func logprob(of token: Int32, in logits: UnsafeMutableBufferPointer<Float>) -> Float {
        score(token, in: logits, top: 0).logprob
    }

    /// log-softmax of `logits` at `token` and at the `top` most likely tokens, best first (prompt scoring).
    public static func score(_ token: Int32, in logits: UnsafeMutableBufferPointer<Float>, top n: Int)
        -> (logprob: Float, top: [TokenScore])
    {
        let normalizer = VectorMath.logSumExp(logits)
        let alternatives = n > 0
            ? PartialSelection.top(n, of: logits).map { TokenScore(token: Int32($0), logprob: logits[$0] - normalizer) }
            : []
        guard token >= 0 && Int(token) < logits.count else { return (-.infinity, alternatives) }
        return (logits[Int(token)] - normalizer, alternatives)
    }
}
