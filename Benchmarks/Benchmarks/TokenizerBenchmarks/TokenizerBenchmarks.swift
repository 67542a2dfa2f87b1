// package-benchmark micro-benchmarks of the GGUF tokenizer: encode and decode throughput (MB/s of text) on a
// fixed 64 KiB corpus of prose, code, numbers and some non-ASCII text, with the default model's vocabulary.
import Benchmark
import Foundation
import Inference

func modelPath() -> String {
    if let env = ProcessInfo.processInfo.environment["VALET_BENCH_MODEL"], !env.isEmpty { return env }
    for candidate in ["../models/SmolLM2-135M-Instruct.Q4_1.gguf", "models/SmolLM2-135M-Instruct.Q4_1.gguf"]
    where FileManager.default.fileExists(atPath: candidate) {
        return candidate
    }
    return "../models/SmolLM2-135M-Instruct.Q4_1.gguf"
}

func configureDefaults() {
    let seconds = Double(ProcessInfo.processInfo.environment["VALET_BENCH_MAX_SECONDS"] ?? "") ?? 2
    Benchmark.defaultConfiguration = .init(
        // JMH export (how bench/run.py reads results) requires the throughput metric.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 2,
        maxDuration: .milliseconds(Int(seconds * 1000)),
        maxIterations: 10_000
    )
}

/// The same 64 KiB every run: a deterministic mix of the text kinds prompts contain.
func corpus(bytes target: Int = 64 * 1024) -> String {
    let pieces = [
        "The quick brown fox jumps over the lazy dog, and then it naps in the afternoon sun. ",
        "In 2024, the server handled 1,234,567 requests at 99.95% availability; p95 latency was 182 ms. ",
        "func add(_ a: Int, _ b: Int) -> Int {\n    return a + b // sum\n}\n",
        "Il était une fois une entreprise à Zürich qui vendait des crêpes à 3,50 €. ",
        "東京は日本の首都です。天気はとても良いです。 ",
        "What's the capital of France? Isn't it Paris? Yes—it's Paris!\n\n",
        "    - item one\n    - item two\n\tindented with a tab\n",
        "Emoji are text too 🙂👍🏽, and so are symbols like ≤ ≥ ≠ → ∞. ",
    ]
    var s = ""
    var i = 0
    while s.utf8.count < target {
        s += pieces[(i * 5 + i / 3) % pieces.count]
        i += 1
    }
    return s
}

let benchmarks: @Sendable () -> Void = {
    configureDefaults()
    let path = modelPath()
    guard let file = try? GGUFFile(path: path), let tokenizer = try? Tokenizer(gguf: file) else {
        print("TokenizerBenchmarks: model not found at \(path) (set VALET_BENCH_MODEL); skipping")
        return
    }
    let text = corpus()
    let bytes = text.utf8.count
    let tokens = tokenizer.encode(text, addBOS: false, parseSpecial: false)
    let decodedBytes = tokenizer.decode(tokens).utf8.count

    Benchmark("Tokenizer encode 64 KiB, \(tokens.count) tokens (bytes=\(bytes))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(tokenizer.encode(text, addBOS: false, parseSpecial: false))
        }
    }
    Benchmark("Tokenizer decode \(tokens.count) tokens (bytes=\(decodedBytes))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(tokenizer.decode(tokens))
        }
    }
    let prompt = "<|im_start|>user\nWhich planet is known as the Red Planet?<|im_end|>\n<|im_start|>assistant\n"
    Benchmark("Tokenizer encode one chat prompt (bytes=\(prompt.utf8.count))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(tokenizer.encode(prompt, addBOS: false, parseSpecial: true))
        }
    }
}
