// The batched, paged forward pass on the real default model: batching, chunking and block placement must not
// change any logits, bad batches are refused, and the logits agree with the independent numpy oracle.
import Foundation
import TestSupport
import Testing
@testable import Inference

enum EngineFixture {
    /// A fresh engine on the default model, or nil (with a recorded issue) when the model is absent.
    static func engine(threads: Int = 2, kvTokens: Int = 64 * 16) throws -> LlamaEngine? {
        guard let path = TestModel.path else {
            Issue.record("default model missing: run `make model` or set VALET_TEST_MODEL")
            return nil
        }
        return try LlamaEngine(model: try GGUFFile(path: path), threads: threads, kvCacheTokens: kvTokens)
    }

    /// Runs one step and returns the emitted rows keyed by (sequence, token index).
    static func step(_ engine: LlamaEngine, _ batch: [StepSequence]) throws -> [Key: [Float]] {
        var rows: [Key: [Float]] = [:]
        try engine.step(batch) { s, t, row in rows[Key(sequence: s, token: t)] = Array(row) }
        return rows
    }

    struct Key: Hashable { var sequence: Int, token: Int }

    /// Deterministic pseudo-random token ids.
    static func tokens(_ count: Int, seed: UInt64) -> [Int32] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32(truncatingIfNeeded: (state >> 33) % 49152)
        }
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func argmax(_ a: [Float]) -> Int { a.indices.max { a[$0] < a[$1] }! }
}

@Suite(.serialized) struct LlamaEngineTests {
    typealias F = EngineFixture

    @Test func exposesModelShape() throws {
        guard let e = try F.engine(kvTokens: 100) else { return }
        #expect(e.vocabSize == 49152)
        #expect(e.blockSize == 16)
        #expect(e.totalBlocks == 7)
        #expect(e.contextLength == 8192)
        #expect(e.config.layers == 30 && e.config.heads == 9 && e.config.kvHeads == 3 && e.config.headDim == 64)
        #expect(e.config.ropeFreqBase == 100_000)
    }

    @Test func batchedStepMatchesEachSequenceAlone() throws {
        guard let e = try F.engine() else { return }
        let a = F.tokens(20, seed: 1), b = F.tokens(7, seed: 2), c = F.tokens(33, seed: 3)
        let tableA: [Int32] = [5, 9], tableB: [Int32] = [1], tableC: [Int32] = [30, 2, 17]

        // Alone: each sequence's history, then the step under test, one sequence per call.
        _ = try F.step(e, [StepSequence(blockTable: tableA, position: 0, tokens: Array(a[..<19]), logits: .none)])
        let aloneA = try F.step(e, [StepSequence(blockTable: tableA, position: 19, tokens: [a[19]], logits: .last)])
        let aloneB = try F.step(e, [StepSequence(blockTable: tableB, position: 0, tokens: b, logits: .all)])
        _ = try F.step(e, [StepSequence(blockTable: tableC, position: 0, tokens: Array(c[..<16]), logits: .none)])
        let aloneC = try F.step(e, [StepSequence(blockTable: tableC, position: 16, tokens: Array(c[16...]), logits: .last)])

        // Batched, in other blocks of the same pool: histories together, then a decode token, a whole prompt and a
        // prompt chunk in one step.
        let tA: [Int32] = [40, 41], tB: [Int32] = [12], tC: [Int32] = [50, 3, 44]
        _ = try F.step(e, [
            StepSequence(blockTable: tA, position: 0, tokens: Array(a[..<19]), logits: .none),
            StepSequence(blockTable: tC, position: 0, tokens: Array(c[..<16]), logits: .none),
        ])
        let batched = try F.step(e, [
            StepSequence(blockTable: tA, position: 19, tokens: [a[19]], logits: .last),
            StepSequence(blockTable: tB, position: 0, tokens: b, logits: .all),
            StepSequence(blockTable: tC, position: 16, tokens: Array(c[16...]), logits: .last),
        ])

        #expect(batched.count == 1 + 7 + 1)
        let pairs: [(F.Key, [Float]?)] = [(F.Key(sequence: 0, token: 0), aloneA[F.Key(sequence: 0, token: 0)])]
            + (0..<7).map { (F.Key(sequence: 1, token: $0), aloneB[F.Key(sequence: 0, token: $0)]) }
            + [(F.Key(sequence: 2, token: 16), aloneC[F.Key(sequence: 0, token: 16)])]
        for (key, alone) in pairs {
            let together = try #require(batched[key], "missing row \(key)")
            let reference = try #require(alone, "missing reference for \(key)")
            #expect(together.count == 49152)
            #expect(F.maxAbsDiff(together, reference) <= 1e-4, "row \(key)")
        }
    }

    @Test func chunkedPrefillEqualsOneShot() throws {
        guard let e = try F.engine() else { return }
        let p = F.tokens(45, seed: 7)
        let oneShot = try F.step(e, [StepSequence(blockTable: [0, 1, 2], position: 0, tokens: p, logits: .all)])
        var chunked: [Int: [Float]] = [:]
        var at = 0
        for size in [13, 3, 16, 13] {
            let rows = try F.step(e, [StepSequence(blockTable: [10, 11, 12], position: at, tokens: Array(p[at..<at + size]),
                                                   logits: .all)])
            for (k, v) in rows { chunked[at + k.token] = v }
            at += size
        }
        #expect(oneShot.count == 45 && chunked.count == 45)
        for i in 0..<45 {
            let one = try #require(oneShot[F.Key(sequence: 0, token: i)])
            #expect(F.maxAbsDiff(one, chunked[i]!) <= 1e-4, "position \(i)")
        }
    }

    @Test func blockPlacementDoesNotMatter() throws {
        guard let e = try F.engine() else { return }
        let p = F.tokens(40, seed: 11)
        let contiguous = try F.step(e, [StepSequence(blockTable: [0, 1, 2], position: 0, tokens: p, logits: .last)])
        let scattered = try F.step(e, [StepSequence(blockTable: [63, 7, 31], position: 0, tokens: p, logits: .last)])
        let a = try #require(contiguous[F.Key(sequence: 0, token: 39)])
        let b = try #require(scattered[F.Key(sequence: 0, token: 39)])
        #expect(F.maxAbsDiff(a, b) == 0)
        // A different history in the same blocks changes the result, so the cache is really being read.
        let other = F.tokens(39, seed: 12) + [p[39]]
        let changed = try F.step(e, [StepSequence(blockTable: [63, 7, 31], position: 0, tokens: other, logits: .last)])
        #expect(F.maxAbsDiff(a, changed[F.Key(sequence: 0, token: 39)]!) > 0.1)
    }

    @Test func singleThreadMatchesTwoThreads() throws {
        guard let one = try F.engine(threads: 1), let two = try F.engine(threads: 2) else { return }
        let p = F.tokens(21, seed: 5)
        let batch = [StepSequence(blockTable: [3, 4], position: 0, tokens: p, logits: .last)]
        let r1 = try F.step(one, batch), r2 = try F.step(two, batch)
        #expect(F.maxAbsDiff(r1[F.Key(sequence: 0, token: 20)]!, r2[F.Key(sequence: 0, token: 20)]!) == 0)
    }

    @Test func refusesBadBatches() throws {
        guard let e = try F.engine(kvTokens: 64) else { return }
        func refuses(_ seq: StepSequence, _ fragment: String) {
            do {
                try e.step([seq]) { _, _, _ in }
                Issue.record("accepted a bad batch (\(fragment))")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        refuses(StepSequence(blockTable: [0], position: 10, tokens: F.tokens(7, seed: 1), logits: .last), "cannot hold")
        refuses(StepSequence(blockTable: [9], position: 0, tokens: [1], logits: .last), "outside the pool")
        refuses(StepSequence(blockTable: [0], position: 0, tokens: [49152], logits: .last), "outside the vocabulary")
        refuses(StepSequence(blockTable: [0], position: 0, tokens: [], logits: .last), "no tokens")
        refuses(StepSequence(blockTable: [0], position: 8192, tokens: [1], logits: .last), "context length")
    }
}
