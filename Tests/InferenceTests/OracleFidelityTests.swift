// Fidelity against the independent numpy oracle (Tests/python/oracle.py): same argmax everywhere, close logits,
// and the same 32 greedy tokens.
import Foundation
import TestSupport
import Testing
@testable import Inference

enum Oracle {
    static var script: String? {
        if let p = ProcessInfo.processInfo.environment["VALET_ORACLE"], FileManager.default.fileExists(atPath: p) { return p }
        let local = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/oracle.py").path
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }

    /// The oracle's logits [positions × vocab] for `tokens` and its greedy continuation.
    static func run(model: String, tokens: [Int32], greedy: Int) throws -> (logits: [[Float]], greedy: [Int32]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-oracle-\(getpid())-\(tokens.count)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let logitsPath = dir.appendingPathComponent("logits.f32").path, jsonPath = dir.appendingPathComponent("out.json").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script!, "--model", model, "--tokens", tokens.map(String.init).joined(separator: ","),
                             "--logits-out", logitsPath, "--greedy", "\(greedy)", "--json-out", jsonPath]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw EngineError("oracle exited with \(process.terminationStatus)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: logitsPath))
        let floats = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let vocab = floats.count / tokens.count
        let rows = (0..<tokens.count).map { Array(floats[$0 * vocab..<($0 + 1) * vocab]) }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonPath))) as? [String: Any]
        let ids = (json?["greedy"] as? [Int] ?? []).map { Int32($0) }
        return (rows, ids)
    }

    /// Writes a tiny random llama (every supported tensor type) with Tests/python/make_tiny_llama.py.
    static func tinyModel(_ arguments: [String]) throws -> String {
        let script = URL(fileURLWithPath: script!).deletingLastPathComponent().appendingPathComponent("make_tiny_llama.py").path
        let out = FileManager.default.temporaryDirectory
            .appendingPathComponent("valet-tiny-\(getpid())-\(arguments.joined().hashValue).gguf").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, out] + arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw EngineError("make_tiny_llama.py exited with \(process.terminationStatus)") }
        return out
    }
}

@Suite(.serialized) struct OracleFidelityTests {
    typealias F = EngineFixture

    /// ChatML prompts for the two sanity questions, tokenized independently (Tests/python/gguf_tokenize.py --chat).
    static let redPlanet: [Int32] = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
                                     407, 19712, 8182, 2, 198, 1, 4093, 198, 14413, 3925, 314, 1343, 347, 260, 3950, 16728,
                                     47, 2, 198, 1, 520, 9531, 198]
    static let largestOcean: [Int32] = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
                                        407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3995, 5065, 335, 2591, 47, 2,
                                        198, 1, 520, 9531, 198]
    /// "The capital of France is Paris, and the capital of Germany is" (plain text). Logits only: 21 tokens into its
    /// greedy continuation the oracle's top two logits are 0.06 apart (0.17% of their range), a coin toss for any
    /// engine that is not bit-identical to numpy.
    static let capitals: [Int32] = [504, 3575, 282, 4649, 314, 7042, 28, 284, 260, 3575, 282, 4521, 314]

    @Test(arguments: [(redPlanet, 32), (largestOcean, 32), (capitals, 0)])
    func matchesOracle(prompt: [Int32], greedyCount: Int) throws {
        guard let model = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
        guard Oracle.script != nil else {
            Issue.record("Tests/python/oracle.py missing: cannot check fidelity")
            return
        }
        let oracle = try Oracle.run(model: model, tokens: prompt, greedy: greedyCount)
        guard let e = try F.engine() else { return }
        let table = (0..<Int32(16)).map { $0 }

        let rows = try F.step(e, [StepSequence(blockTable: table, position: 0, tokens: prompt, logits: .all)])
        #expect(rows.count == prompt.count)
        var relative: [Float] = []
        for (i, reference) in oracle.logits.enumerated() {
            let ours = try #require(rows[F.Key(sequence: 0, token: i)])
            #expect(F.argmax(ours) == F.argmax(reference), "argmax differs at position \(i)")
            relative.append(F.maxAbsDiff(ours, reference) / (reference.max()! - reference.min()!))
        }
        let summary = relative.map { String(format: "%.4f", $0) }.joined(separator: " ")
        #expect(relative.max()! <= 0.01, "max-abs diff / logit range per position: \(summary)")
        print("fidelity: max-abs diff / logit range per position: \(summary)")

        if greedyCount == 0 { return }
        var generated: [Int32] = []
        var last = Int32(F.argmax(rows[F.Key(sequence: 0, token: prompt.count - 1)]!))
        for step in 0..<greedyCount {
            generated.append(last)
            if step == greedyCount - 1 { break }
            let r = try F.step(e, [StepSequence(blockTable: table, position: prompt.count + step, tokens: [last], logits: .last)])
            last = Int32(F.argmax(r[F.Key(sequence: 0, token: 0)]!))
        }
        #expect(generated == oracle.greedy)
    }

    /// Every tensor type through the engine (K-quants and BF16 take the dequantizing path), tied and separate output
    /// weights, and linear RoPE scaling, against the oracle on a tiny random model.
    @Test(arguments: [[String](), ["--tied"], ["--rope-scaling", "linear:4"]])
    func tinyModelOfEveryTensorTypeMatchesOracle(options: [String]) throws {
        guard Oracle.script != nil else {
            Issue.record("Tests/python/oracle.py missing: cannot check fidelity")
            return
        }
        let path = try Oracle.tinyModel(["--seed", "3"] + options)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let prompt: [Int32] = [1, 70, 300, 12, 99, 5, 250, 17, 64, 3, 200, 42, 8, 111, 7, 19, 150, 30, 2]
        let oracle = try Oracle.run(model: path, tokens: prompt, greedy: 8)
        let e = try LlamaEngine(model: try GGUFFile(path: path), threads: 2, kvCacheTokens: 64)
        let rows = try F.step(e, [StepSequence(blockTable: [3, 1], position: 0, tokens: Array(prompt[..<11]), logits: .all)])
            .merging(try F.step(e, [StepSequence(blockTable: [3, 1], position: 11, tokens: Array(prompt[11...]), logits: .all)])
                .map { (F.Key(sequence: 0, token: $0.key.token + 11), $0.value) }) { a, _ in a }
        for (i, reference) in oracle.logits.enumerated() {
            let ours = try #require(rows[F.Key(sequence: 0, token: i)])
            let relative = F.maxAbsDiff(ours, reference) / (reference.max()! - reference.min()!)
            #expect(relative <= 0.01, "position \(i): max-abs diff / range \(relative)")
            #expect(F.argmax(ours) == F.argmax(reference), "argmax differs at position \(i)")
        }
        var generated: [Int32] = []
        var last = Int32(F.argmax(rows[F.Key(sequence: 0, token: prompt.count - 1)]!))
        for step in 0..<8 {
            generated.append(last)
            if step == 7 { break }
            let r = try F.step(e, [StepSequence(blockTable: [3, 1, 0], position: prompt.count + step, tokens: [last], logits: .last)])
            last = Int32(F.argmax(r[F.Key(sequence: 0, token: 0)]!))
        }
        #expect(generated == oracle.greedy)
    }
}
