// `valet bench`: engine throughput as llama-bench reports it (pp / tg tokens per second) plus batched decoding.
import ArgumentParser
import Foundation
import Inference

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing and generation speed of the engine.")

    @Option(name: [.customShort("m"), .long], help: "GGUF model file.")
    var model: String = ServeConfig().model

    @Option(name: [.customShort("t"), .long], help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens processed in one step (0 skips).")
    var prompt: Int = 512

    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Tokens generated one step at a time (0 skips).")
    var generate: Int = 128

    @Option(name: .long, help: """
        Also decode this many sequences together and report their aggregate rate, and its ratio to one sequence \
        (the two take turns, so each repetition gives a paired ratio).
        """)
    var batch: Int = 1

    @Option(name: [.customShort("r"), .long], help: "Repetitions of each test.")
    var repetitions: Int = 5

    func run() throws {
        let bench = EngineBenchmark(modelPath: model, threads: threads, promptTokens: prompt, generatedTokens: generate,
                                    batch: batch, repetitions: repetitions)
        let report = try bench.run { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        print(report.text)
    }
}
