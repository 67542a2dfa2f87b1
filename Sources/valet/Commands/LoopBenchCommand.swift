// `valet loop-bench`: the engine loop's own cost per decode step with the prefix cache on and off (no model), so the
// cache's bookkeeping can be weighed against a real decode step.
import ArgumentParser
import Foundation
import Scheduling

struct LoopBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop-bench",
        abstract: "Measure the scheduler's bookkeeping per decode step, prefix cache on vs off (no model needed).")

    @Option(name: [.customShort("n"), .long], help: "Tokens decoded per repetition.")
    var tokens: Int = 2048

    @Option(name: [.customShort("r"), .long], help: "Repetitions of each side (they alternate).")
    var repetitions: Int = 5

    @Option(name: .long, help: "Blocks cached from other prompts before timing.")
    var cachedBlocks: Int = 2048

    func validate() throws {
        guard tokens > 0, repetitions > 0, cachedBlocks >= 0 else {
            throw ValidationError("--tokens and --repetitions must be positive, --cached-blocks not negative")
        }
    }

    func run() throws {
        let r = LoopOverheadBenchmark(tokens: tokens, repetitions: repetitions, cachedBlocks: cachedBlocks).run()
        let median = { (v: [Double]) in v.sorted()[v.count / 2] }
        let (on, off) = (median(r.on), median(r.off))
        print(String(format: "loop µs/step: cache on %.2f, off %.2f, difference %.2f", on * 1e6, off * 1e6,
                     (on - off) * 1e6))
    }
}
