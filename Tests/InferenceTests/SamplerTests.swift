// Sampler, stop matching and UTF-8 hold-back against known distributions and direct computations.
import Foundation
import Testing
@testable import Inference

private func withRow<R>(_ values: [Float], _ body: (UnsafeMutableBufferPointer<Float>) -> R) -> R {
    var copy = values
    return copy.withUnsafeMutableBufferPointer { body($0) }
}

private func params(_ edit: (inout SamplingParameters) -> Void) -> SamplingParameters {
    var p = SamplingParameters()
    edit(&p)
    return p
}

private func draws(_ p: SamplingParameters, _ logits: [Float], count: Int) -> [Int32: Int] {
    var s = Sampler(parameters: p)
    var seen: [Int32: Int] = [:]
    for _ in 0..<count {
        seen[withRow(logits) { s.sample($0).token }, default: 0] += 1
    }
    return seen
}

@Suite struct SamplerTests {
    @Test func greedyPicksArgmaxAndLowestIndexOnTies() {
        var s = Sampler(parameters: params { $0.temperature = 0 })
        #expect(withRow([0.1, 3.0, -2, 2.9]) { s.sample($0).token } == 1)
        #expect(withRow([1, 5, 5, 2]) { s.sample($0).token } == 1)
    }

    @Test func sameSeedSameTokensDifferentSeedDifferent() {
        let logits = (0..<500).map { Float(sin(Double($0))) * 2 }
        func run(_ seed: UInt64) -> [Int32] {
            var s = Sampler(parameters: params { $0.seed = seed; $0.temperature = 0.9; $0.topP = 0.95 })
            return (0..<64).map { _ in withRow(logits) { s.sample($0).token } }
        }
        #expect(run(42) == run(42))
        #expect(run(42) != run(43))
    }

    @Test func temperatureSamplingFollowsTheDistribution() {
        // probabilities 0.7 / 0.2 / 0.1, plus a banned token that must never appear
        let logits: [Float] = [log(0.7), log(0.2), log(0.1), -.infinity]
        let seen = draws(params { $0.seed = 7 }, logits, count: 20000)
        #expect(seen[3] == nil)
        #expect(abs(Double(seen[0, default: 0]) / 20000 - 0.7) < 0.02)
        #expect(abs(Double(seen[1, default: 0]) / 20000 - 0.2) < 0.02)
        #expect(abs(Double(seen[2, default: 0]) / 20000 - 0.1) < 0.02)
    }

    @Test func topKKeepsOnlyTheKBestRenormalized() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.15), log(0.05)]
        let seen = draws(params { $0.seed = 1; $0.topK = 2 }, logits, count: 20000)
        #expect(Set(seen.keys) == [0, 1])
        #expect(abs(Double(seen[0, default: 0]) / 20000 - 0.625) < 0.02)
    }

    @Test func topPKeepsTheSmallestPrefixReachingP() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.15), log(0.05)]
        #expect(Set(draws(params { $0.seed = 2; $0.topP = 0.75 }, logits, count: 5000).keys) == [0, 1])
        #expect(Set(draws(params { $0.seed = 2; $0.topP = 0.9 }, logits, count: 5000).keys) == [0, 1, 2])
        #expect(Set(draws(params { $0.seed = 2; $0.topP = 0.0 }, logits, count: 500).keys) == [0])
    }

    @Test func topPWidensBeyondTheFirstCandidates() {
        // 5000 equally likely tokens: top_p 0.499 keeps the first 2495 (lower index wins ties).
        let logits = [Float](repeating: 0.25, count: 5000)
        let seen = draws(params { $0.seed = 3; $0.topP = 0.499 }, logits, count: 600)
        #expect(seen.keys.allSatisfy { $0 < 2500 })
        #expect(seen.keys.contains { $0 > 2000 })
    }

    @Test func minPDropsTokensBelowAFractionOfTheBest() {
        let logits: [Float] = [log(0.5), log(0.3), log(0.15), log(0.05)]
        // keeps p >= 0.2 * 0.5 = 0.1
        #expect(Set(draws(params { $0.seed = 4; $0.minP = 0.2 }, logits, count: 5000).keys) == [0, 1, 2])
        #expect(Set(draws(params { $0.seed = 4; $0.minP = 0.7 }, logits, count: 2000).keys) == [0])
    }

    @Test func repetitionPenaltyCoversThePromptPresenceAndFrequencyOnlyGenerated() {
        let logits: [Float] = [2.0, 1.9, -1.0, -1.05]
        var plain = Sampler(parameters: params { $0.temperature = 0 }, prompt: [0])
        #expect(withRow(logits) { plain.sample($0).token } == 0)
        var rep = Sampler(parameters: params { $0.temperature = 0; $0.repetitionPenalty = 1.2 }, prompt: [0])
        #expect(withRow(logits) { rep.sample($0).token } == 1)  // 2.0 / 1.2 < 1.9
        // negative logits are multiplied: -1.0 * 1.2 = -1.2 falls below -1.05
        var neg = Sampler(parameters: params { $0.temperature = 0; $0.repetitionPenalty = 1.2 }, prompt: [2])
        #expect(withRow([-5, -5, -1.0, -1.05]) { neg.sample($0).token } == 3)
        // presence: the prompt does not count; a generated token does
        var pres = Sampler(parameters: params { $0.temperature = 0; $0.presencePenalty = 0.5 }, prompt: [0])
        #expect(withRow([1.0, 0.8]) { pres.sample($0).token } == 0)
        #expect(withRow([1.0, 0.8]) { pres.sample($0).token } == 1)
        // frequency grows with the count
        var freq = Sampler(parameters: params { $0.temperature = 0; $0.frequencyPenalty = 0.15 })
        let picks = (0..<4).map { _ in withRow([1.0, 0.8]) { freq.sample($0).token } }
        #expect(picks == [0, 0, 1, 0])  // 1.0, 0.85 > 0.8, 0.7 < 0.8, then 0.8 - 0.15 = 0.65 < 0.7
    }

    @Test func logitBiasShiftsAndBans() {
        var s = Sampler(parameters: params { $0.temperature = 0; $0.logitBias = [2: 10] })
        #expect(withRow([3, 2, 1, 0]) { s.sample($0).token } == 2)
        let seen = draws(params { $0.seed = 9; $0.logitBias = [0: -.infinity] }, [5, 0, 0], count: 2000)
        #expect(seen[0] == nil)
    }

    @Test func logprobsMatchADirectLogSoftmax() {
        var gen = Xoshiro256(seed: 11)
        let logits = (0..<49152).map { _ in Float(gen.nextUnit() * 20 - 10) }
        let bias: [Int32: Float] = [17: 3.5]
        var biased = logits.map(Double.init)
        biased[17] += 3.5
        let m = biased.max()!
        let lse = m + log(biased.reduce(0) { $0 + exp($1 - m) })
        let expectedTop = biased.indices.sorted { biased[$0] > biased[$1] }.prefix(5)

        var s = Sampler(parameters: params { $0.seed = 5; $0.logitBias = bias; $0.repetitionPenalty = 1.3 }, prompt: [17])
        let out = withRow(logits) { s.sample($0, topLogprobs: 5) }
        let chosen = Int(out.token)
        #expect(abs(Double(out.logprob!) - (biased[chosen] - lse)) < 1e-4)
        #expect(out.top.map { Int($0.token) } == Array(expectedTop))
        for t in out.top {
            #expect(abs(Double(t.logprob) - (biased[Int(t.token)] - lse)) < 1e-4)
        }
        var greedy = Sampler(parameters: params { $0.temperature = 0 })
        let g = withRow(logits) { greedy.sample($0, topLogprobs: 0) }
        #expect(g.top.isEmpty)
        #expect(Int(g.token) == logits.indices.max { logits[$0] < logits[$1] })
    }

    @Test func vectorExpIsAccurate() {
        for x in stride(from: -80.0 as Float, through: 80, by: 0.37) {
            let e = VectorMath.exp(x), ref = Foundation.exp(x)
            #expect(abs(e - ref) <= ref * 2e-6)
        }
        #expect(VectorMath.exp(-.infinity) == 0)
    }
}

@Suite struct StopMatcherTests {
    private func run(_ stops: [String], _ pieces: [String]) -> (String, String?) {
        var t = TextStream(stops: stops)
        var out = ""
        for p in pieces {
            let r = t.push(Array(p.utf8))
            out += r.text
            if r.stopped { return (out, t.matchedStop) }
        }
        return (out + t.finish(), nil)
    }

    @Test func stopAcrossTokenBoundariesIsCutWithEverythingAfter() {
        let (text, stop) = run(["o Wor"], ["Hel", "lo W", "or", "ld", "!!"])
        #expect(text == "Hell")
        #expect(stop == "o Wor")
    }

    @Test func possibleStopPrefixIsHeldBackThenReleased() {
        var m = StopMatcher(stops: ["\n\n", "END"])
        #expect(m.push(Array("abc\n".utf8)) == Array("abc".utf8))
        #expect(m.push(Array("x E".utf8)) == Array("\nx ".utf8))
        #expect(m.push(Array("N".utf8)) == [])
        #expect(m.flush() == Array("EN".utf8))
        #expect(m.matched == nil)
    }

    @Test func earliestStopWinsAndNothingAfterIsEmitted() {
        let (text, stop) = run(["cd", "b"], ["abcd"])
        #expect(text == "a")
        #expect(stop == "b")
        let (plain, none) = run([], ["x", "y"])
        #expect(plain == "xy")
        #expect(none == nil)
    }

    @Test func utf8IsReleasedOnlyInWholeCharacters() {
        var t = TextStream(stops: [])
        let e = Array("é😀".utf8)  // 2 + 4 bytes
        #expect(t.push([e[0]]).text == "")
        #expect(t.push([e[1], e[2]]).text == "é")
        #expect(t.push([e[3], e[4]]).text == "")
        #expect(t.push([e[5]]).text == "😀")
        #expect(t.push([0xF0, 0x9F]).text == "")
        #expect(t.finish() == "\u{FFFD}")
    }

    @Test func stopInsideAMultibyteSplitToken() {
        let bytes = Array("naïve stop".utf8)
        var t = TextStream(stops: ["ïv"])
        var out = ""
        for b in bytes {
            let r = t.push([b])
            out += r.text
            if r.stopped { break }
        }
        #expect(out == "na")
        #expect(t.matchedStop == "ïv")
    }
}
