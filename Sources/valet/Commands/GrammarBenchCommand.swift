// `valet grammar-bench` (hidden; `make bench` runs it): the structured-output costs timed in-process on the real
// vocabulary — compiling a schema, its first mask, and the mask per token along a valid answer.
import ArgumentParser
import Foundation
import Inference
import OpenAIAPI

struct GrammarBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grammar-bench",
        abstract: "Time compiling a JSON schema to a grammar and masking each token of an answer (needs only the tokenizer).",
        shouldDisplay: false)

    @Option(name: [.customShort("m"), .long], help: "GGUF model file (only its tokenizer is read).")
    var model: String = ServeConfig().model

    @Option(name: .long, help: "JSON file holding the schema.")
    var schema: String

    @Option(name: .long, help: "JSON file holding an answer the schema allows, in the grammar's member order.")
    var answer: String

    @Option(name: [.customShort("r"), .long], help: "Repetitions (each with a fresh compiler, so nothing is cached).")
    var repetitions: Int = 7

    @Option(name: .long, help: "The max_tokens the walk pretends the request had.")
    var maxTokens: Int = 1024

    @Flag(name: .long, help: "Print each token of the first walk with its mask time.")
    var verbose = false

    func validate() throws {
        guard repetitions > 0, maxTokens > 0 else { throw ValidationError("--repetitions and --max-tokens must be positive") }
    }

    func run() throws {
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: model))
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        guard let schemaValue = JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: schema)))) else {
            throw CLIError("\(schema) is not JSON")
        }
        let answerBytes = Array(try Data(contentsOf: URL(fileURLWithPath: answer)))
        let format = ResponseFormat.jsonSchema(name: "bench", schema: schemaValue, strict: true)
        var compile: [Double] = [], firstMask: [Double] = [], cold: [Double] = [], warm: [Double] = []
        var tokens = 0
        for _ in 0..<repetitions {
            let compiler = ConstraintCompiler(vocabulary: vocabulary)
            let t0 = ContinuousClock.now
            guard let masker = try compiler.masker(for: format) else { throw CLIError("the schema compiled to nothing") }
            let t1 = ContinuousClock.now
            var first = masker.start()
            _ = first.allowedTokens(remaining: maxTokens)
            let t2 = ContinuousClock.now
            compile.append(seconds(t1 - t0))
            firstMask.append(seconds(t2 - t1))
            // The first walk finds the masker's cache empty (a new schema's first request), the second full.
            let (coldTime, n) = try walk(masker, answerBytes, vocabulary, verbose: verbose && cold.isEmpty)
            let (warmTime, _) = try walk(masker, answerBytes, vocabulary)
            cold.append(coldTime / Double(n))
            warm.append(warmTime / Double(n))
            tokens = n
        }
        print("compile ms: " + summary(compile, scale: 1e3))
        print("first mask ms: " + summary(firstMask, scale: 1e3))
        print("mask µs/token cold: " + summary(cold, scale: 1e6) + " over \(tokens) tokens")
        print("mask µs/token warm: " + summary(warm, scale: 1e6) + " over \(tokens) tokens")
    }

    /// Writes `answer` token by token as a model could — each step the longest allowed token that continues it —
    /// timing only the constraint's own work (the mask and the advance). Returns the seconds and the tokens.
    private func walk(_ masker: GrammarMasker, _ answer: [UInt8], _ vocabulary: TokenVocabulary,
                      verbose: Bool = false) throws -> (Double, Int) {
        var c = masker.start()
        var at = 0, used = 0
        var spent = Duration.zero
        while at < answer.count {
            let t0 = ContinuousClock.now
            guard let mask = c.allowedTokens(remaining: maxTokens - used) else { throw CLIError("no mask at byte \(at)") }
            let maskTime = ContinuousClock.now - t0
            spent += maskTime
            var best: (token: Int32, length: Int)?
            for t in mask.tokens {
                guard let b = vocabulary.bytes(of: t), b.count > (best?.length ?? 0), at + b.count <= answer.count,
                      answer[at..<(at + b.count)].elementsEqual(b) else { continue }
                best = (t, b.count)
            }
            guard let best else {
                throw CLIError("the answer leaves the grammar at byte \(at): \(String(decoding: answer[at...].prefix(40), as: UTF8.self))")
            }
            let t1 = ContinuousClock.now
            c.accept(best.token)
            spent += ContinuousClock.now - t1
            if verbose {
                let text = String(decoding: answer[at..<(at + best.length)], as: UTF8.self)
                print(String(format: "%9.1f µs  %5d allowed  ", seconds(maskTime) * 1e6, mask.allowedCount) + text)
            }
            at += best.length
            used += 1
        }
        guard c.matcher.isComplete else { throw CLIError("the answer is not a complete text of the grammar") }
        return (seconds(spent), used)
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    private func summary(_ values: [Double], scale: Double) -> String {
        let s = values.sorted()
        return String(format: "median %.3f (min %.3f, max %.3f) over %d", s[s.count / 2] * scale, s[0] * scale,
                      s[s.count - 1] * scale, s.count)
    }
}
