// Sampling defaults: the precedence of flags over the model file over llama.cpp, what a bad GGUF value does, and
// the llama.cpp chain (top-k, then top-p, then min-p) acting together on one distribution.
import Foundation
import Testing
@testable import Inference

@Suite struct SamplingDefaultsTests {
    @Test func flagsBeatTheModelWhichBeatsLlamaCpp() {
        let model = SamplingDefaults.Overrides(modelMetadata: [
            "general.sampling.temp": 0.6, "general.sampling.top_k": 20, "general.sampling.top_p": 0.9,
        ].get)
        #expect(model == SamplingDefaults.Overrides(temperature: 0.6, topK: 20, topP: 0.9))
        let flags = SamplingDefaults.Overrides(temperature: 0.2, minP: 0.1)
        let d = SamplingDefaults.resolve(flags: flags, model: model)
        #expect(d == SamplingDefaults(temperature: 0.2, topK: 20, topP: 0.9, minP: 0.1, repetitionPenalty: 1.0))
        #expect(SamplingDefaults.resolve(flags: .init(), model: .init()) == .llamaCpp)
        #expect(SamplingDefaults.llamaCpp == SamplingDefaults(temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
                                                              repetitionPenalty: 1.0))
    }

    @Test func modelValuesOutsideTheAPIRangesAreIgnored() {
        let model = SamplingDefaults.Overrides(modelMetadata: [
            "general.sampling.temp": 9, "general.sampling.top_k": 2.5, "general.sampling.top_p": 0,
            "general.sampling.min_p": 0.02, "general.sampling.penalty_repeat": 1.1,
        ].get)
        #expect(model.temperature == nil && model.topK == nil && model.topP == nil)
        #expect(model.minP == Float(0.02) && model.repetitionPenalty == Float(1.1))
    }

    @Test func llamaCppChainKeepsOnlyTokensPassingEveryCut() {
        // 50 tokens with probability halving each step: top_k 40 keeps 40, top_p 0.95 keeps the first 5
        // (cumulative 0.969), min_p 0.05 keeps those at least 1/20 of the best, i.e. the first 5 (1/16 ≥ 0.05).
        let logits = (0..<50).map { Float(-Double($0) * log(2.0)) }
        var p = SamplingDefaults.llamaCpp.parameters
        p.seed = 11
        p.temperature = 1
        var s = Sampler(parameters: p)
        var seen = Set<Int32>()
        for _ in 0..<4000 {
            var row = logits
            seen.insert(row.withUnsafeMutableBufferPointer { s.sample($0).token })
        }
        #expect(seen == Set(0..<5))
        // min_p alone at 0.1 cuts the fifth (1/16 < 0.1).
        var q = SamplingParameters()
        q.seed = 3
        q.minP = 0.1
        var t = Sampler(parameters: q)
        var seenQ = Set<Int32>()
        for _ in 0..<4000 {
            var row = logits
            seenQ.insert(row.withUnsafeMutableBufferPointer { t.sample($0).token })
        }
        #expect(seenQ == Set(0..<4))
    }
}

private extension Dictionary where Key == String, Value == Double {
    func get(_ key: String) -> Double? { self[key] }
}
