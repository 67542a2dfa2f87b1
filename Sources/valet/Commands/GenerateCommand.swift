// `valet generate`: one prompt through the same scheduler and engine loop the server uses, text streamed to stdout.
import Scheduling
import ArgumentParser
import Foundation
import Inference
import Locks

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text for one prompt and stream it to stdout.")

    @Option(name: [.customShort("m"), .long], help: "GGUF model file.")
    var model: String = ServeConfig().model

    @Option(name: [.customShort("p"), .long], help: "The prompt text.")
    var prompt: String

    @Flag(name: .long, help: "Wrap the prompt as a user message in the model's chat template.")
    var chat = false

    @Option(name: [.customShort("n"), .long], help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(name: .long, parsing: .unconditional, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Seed for sampling (same seed and prompt give the same text).")
    var seed: UInt64?

    @Option(name: [.customShort("t"), .long], help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature >= 0 else { throw ValidationError("--temperature must not be negative") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let loaded: LoadedModel
        let promptTokens: [Int32]
        do {
            loaded = try LoadedModel(path: model, threads: threads, kvCacheTokens: 4096)
            if chat {
                if let warning = loaded.template.warning { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
                promptTokens = try loaded.template.promptTokens([ChatMessage(role: "user", content: prompt)], tokenizer: loaded.tokenizer)
            } else {
                promptTokens = loaded.tokenizer.encode(prompt, addBOS: loaded.tokenizer.addBOSByDefault, parseSpecial: false)
            }
        } catch {
            throw CLIError("\(error)")
        }
        let scheduler = Scheduler(engine: loaded.engine, decoder: loaded.tokenizer)
        scheduler.start()
        var sampling = SamplingParameters()
        sampling.temperature = temperature
        sampling.seed = seed
        let room = max(1, loaded.engine.contextLength - promptTokens.count)
        let request = GenerationRequest(
            id: "gen-\(UInt32.random(in: 0...UInt32.max))", model: model, promptTokens: promptTokens,
            maxTokens: min(maxTokens, room), sampling: sampling)
        let done = DispatchSemaphore(value: 0)
        let failure = Locked<JobFailure?>(nil)
        scheduler.submit(request) { event in
            switch event {
            case .token(let t):
                FileHandle.standardOutput.write(Data(t.text.utf8))
            case .finished:
                FileHandle.standardOutput.write(Data("\n".utf8))
                done.signal()
            case .failed(let f):
                failure.withLock { $0 = f }
                done.signal()
            case .admitted, .promptLogprobs, .embedding:
                break
            }
        }
        done.wait()
        scheduler.shutdown(grace: 0)
        if let f = failure.withLock({ $0 }) { throw CLIError("generation failed: \(f)") }
    }
}
