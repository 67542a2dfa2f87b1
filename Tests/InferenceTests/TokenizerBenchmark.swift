// Tokenizer throughput (encode/decode MB/s, split scanner vs Swift Regex); runs only with VALET_BENCH=1, prints, asserts nothing on time.
import Foundation
import TestSupport
import Testing
@testable import Inference

@Suite(.enabled(if: ProcessInfo.processInfo.environment["VALET_BENCH"] == "1", "set VALET_BENCH=1 to run"))
struct TokenizerBenchmark {
    /// English prose (the system's license texts) plus this package's sources, about 1 MB.
    static func corpus() throws -> String {
        var text = ""
        let dir = "/usr/share/common-licenses"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? [] {
            if let s = try? String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8) { text += s }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        if let e = FileManager.default.enumerator(atPath: root.appendingPathComponent("Sources").path) {
            for case let p as String in e where p.hasSuffix(".swift") {
                text += (try? String(contentsOfFile: root.appendingPathComponent("Sources/\(p)").path, encoding: .utf8)) ?? ""
            }
        }
        text += trickyStrings.joined(separator: "\n")
        var big = ""
        while big.utf8.count < 1_000_000 { big += text }
        return big
    }

    /// CPU time of this thread: the machine is shared, so wall time would mostly measure the neighbours.
    static func seconds(_ body: () -> Void) -> Double {
        func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        let start = now()
        body()
        return now() - start
    }

    @Test func throughput() throws {
        guard let path = TestModel.path else { return }
        let file = try GGUFFile(path: path)
        var tok: Tokenizer?
        let load = Self.seconds { tok = try? Tokenizer(gguf: file) }
        let tokenizer = try #require(tok)
        let text = try Self.corpus()
        let mb = Double(text.utf8.count) / 1e6
        var ids: [Int32] = []
        let enc = Self.seconds { ids = tokenizer.encode(text, addBOS: false, parseSpecial: true) }
        var back = ""
        let dec = Self.seconds { back = tokenizer.decode(ids) }
        #expect(back == text)
        var pieces = 0
        let split = Self.seconds { pieces = PreTokenizer.smollm.split(text).count }
        print(String(format: "tokenizer: load %.0f ms; %.2f MB -> %d tokens; encode %.1f MB/s; decode %.0f MB/s; smollm split %.1f MB/s (%d pieces)",
                     load * 1000, mb, ids.count, mb / enc, mb / dec, mb / split, pieces))

        // One 200 kB word (think base64): the merge loop must stay O(n log n) on it.
        var rng = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let word = String((0..<200_000).map { _ in letters[Int(rng.next() % UInt64(letters.count))] })
        var wordTokens = 0
        let w = Self.seconds { wordTokens = tokenizer.encode(word, addBOS: false, parseSpecial: false).count }
        print(String(format: "one 200 kB word: %.1f MB/s (%d tokens)", 0.2 / w, wordTokens))

        // The same GPT-2 pattern as a Swift Regex, to compare with the hand scanner.
        let regex = try Regex(#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#)
        let sample = String(text.prefix(200_000))
        let smb = Double(sample.utf8.count) / 1e6
        var regexPieces = 0
        let r = Self.seconds { regexPieces = sample.matches(of: regex).count }
        var scanPieces = 0
        let s = Self.seconds { scanPieces = PreTokenizer.gpt2.split(sample).count }
        print(String(format: "gpt2 split: Swift Regex %.2f MB/s (%d pieces), scanner %.1f MB/s (%d pieces)",
                     smb / r, regexPieces, smb / s, scanPieces))
    }
}
