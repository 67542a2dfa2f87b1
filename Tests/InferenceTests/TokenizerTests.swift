// Checks the tokenizer against independent references: Hugging Face `tokenizers` built from the same GGUF
// vocabulary, llama.cpp's split expressions run by Python's `regex`, and hand-built SentencePiece vocabularies.
import Foundation
import TestSupport
import Testing
@testable import Inference

/// Strings that exercise the split rules: space runs, newlines, digits, contractions, scripts, emoji, code.
let trickyStrings: [String] = [
    "Hello world! 123",
    "The capital of France is",
    "  multiple   spaces",
    "   leading and trailing   ",
    "line one\nline two\n\n\nafter blank lines\r\nwindows\r\n",
    "\ttabs\tand\t\ttwo tabs \t mixed\n\t\n",
    "I'm sure you'll see they've done what we'd said, isn't it? 'quoted' O'Neil's",
    "YOU'RE SHOUTING: DON'T! I'LL",
    "3.14159 and 1,000,000 and 2024-11-27 and 12345678901",
    "x² + y³ = z⁴, ٣٤٥ Arabic-Indic, Ⅻ roman",
    "Café déjà vu, naïve façade — “quotes” ‘single’ … ellipsis",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "Привет, мир! Γειά σου κόσμε! שלום עולם",
    "Emoji: 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ done",
    "func f(_ x: [Int]) -> Int { return x.reduce(0, +) } // ok\n    if a != b && c <= d { print(\"\\(a)\") }",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more<|endoftext|><|im_start|>",
    "almost <|im_star|> special and <|im_end| broken",
    "$100 + €20 = ¥3000 ~ ^caret |pipe| <tag> `code`",
    "a\u{00A0}b\u{2003}c\u{3000}d",
    "\n",
    " ",
    "",
    String(repeating: "supercalifragilistic", count: 40),
    "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IHRoYXQgZ29lcyBvbiBhbmQgb24gYW5kIG9u",
    String(repeating: "ab", count: 30) + String(repeating: "!?", count: 30) + String(repeating: "é", count: 30),
]

/// Fragments that exercise the pre-tokenizer rules alone.
let splitStrings: [String] = trickyStrings + [
    "a\n\n\tb  c 'S don't",
    "x²³ ٣ $+<=> ...!!",
    "!!\n\n  \n x ,\r\n\r\nend",
    "  \t\n",
    "'ll 'LL 'Re 'x ''s",
    "12 123 1234 12345 ١٢٣٤",
    "(hello) [world] {x} 'hi' \"yo\"",
    "😀abc 😀 abc",
]

func loadDefaultTokenizer() throws -> Tokenizer? {
    guard let path = TestModel.path else {
        Issue.record("default model missing: run `make model` or set VALET_TEST_MODEL")
        return nil
    }
    return try Tokenizer(gguf: GGUFFile(path: path))
}

/// `<unk> <s> </s>`, the 256 byte tokens, then pieces whose scores decide the merge order.
func tinySentencePiece(addSpacePrefix: Bool? = nil) throws -> Tokenizer {
    var tokens = ["<unk>", "<s>", "</s>"]
    var types = [2, 3, 3]
    var scores: [Float] = [0, 0, 0]
    for b in 0..<256 {
        tokens.append(String(format: "<0x%02X>", b))
        types.append(6)
        scores.append(0)
    }
    let pieces: [(String, Float)] = [
        ("▁", -1), ("h", -2), ("e", -2), ("l", -2), ("o", -2), ("w", -2), ("r", -2), ("d", -2), ("\n", -2),
        ("ll", -3), ("he", -4), ("hell", -5), ("hello", -6), ("▁hello", -7), ("▁w", -8), ("or", -9),
        ("▁wor", -10), ("▁world", -11), ("ld", -12), ("é", -2), ("▁▁", -13), ("[INST]", -20), ("[", -2), ("]", -2),
    ]
    for (p, s) in pieces {
        tokens.append(p)
        types.append(1)
        scores.append(s)
    }
    return try Tokenizer(model: "llama", tokens: tokens, tokenTypes: types, scores: scores,
                         bos: 1, eos: 2, unknown: 0, addSpacePrefix: addSpacePrefix)
}

@Suite struct TokenizerTests {
    @Test func readsSmolLMVocabulary() throws {
        guard let tok = try loadDefaultTokenizer() else { return }
        #expect(tok.model == .gpt2)
        #expect(tok.preTokenizer == .smollm)
        #expect(tok.vocabSize == 49152)
        #expect(tok.bosToken == 1)
        #expect(tok.eosToken == 2)
        #expect(tok.addBOSByDefault == false)
        #expect(tok.tokenText(1) == "<|im_start|>")
        #expect(tok.tokenText(2) == "<|im_end|>")
        #expect(tok.tokenText(49152) == nil)
        #expect(tok.endOfGenerationTokens == [0, 2])
        #expect(tok.bytes(of: 216) == [0x20])
        #expect(tok.bytes(of: 2) == Array("<|im_end|>".utf8))
        #expect(tok.bytes(of: -1) == [])
        #expect(tok.encode("hi", addBOS: true, parseSpecial: false).first == 1)
    }

    /// Ids published for this vocabulary elsewhere, so a wrong fixture cannot hide a wrong tokenizer.
    @Test func knownSmolLMIds() throws {
        guard let tok = try loadDefaultTokenizer() else { return }
        #expect(tok.encode("Hello world! 123", addBOS: false, parseSpecial: false) == [19556, 905, 17, 216, 33, 34, 35])
        #expect(tok.encode("The capital of France is", addBOS: false, parseSpecial: false) == [504, 3575, 282, 4649, 314])
        #expect(tok.encode("  multiple   spaces", addBOS: false, parseSpecial: false) == [216, 2701, 256, 5600])
        #expect(tok.encode("\n", addBOS: false, parseSpecial: false) == [198])
    }

    @Test func matchesHuggingFaceTokenizersOnDefaultModel() throws {
        guard let tok = try loadDefaultTokenizer(), let path = TestModel.path else { return }
        let ref = try PythonReference.run(["model": path, "texts": trickyStrings])
        let special = try #require(ref["special"] as? [[Int]])
        let plain = try #require(ref["plain"] as? [[Int]])
        let decoded = try #require(ref["decoded"] as? [String])
        for (i, text) in trickyStrings.enumerated() {
            let withSpecials = tok.encode(text, addBOS: false, parseSpecial: true)
            #expect(withSpecials.map(Int.init) == special[i], "parseSpecial: \(text.debugDescription)")
            let asText = tok.encode(text, addBOS: false, parseSpecial: false)
            #expect(asText.map(Int.init) == plain[i], "plain: \(text.debugDescription)")
            #expect(tok.decode(withSpecials) == decoded[i])
        }
    }

    /// The SmolLM vocabulary re-read under the Llama 3 (whole-word lookup first), Qwen2 and GPT-2 rules.
    @Test func otherPreTokenizersMatchHuggingFaceTokenizers() throws {
        guard let path = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
        let file = try GGUFFile(path: path)
        let names = ["llama-bpe", "qwen2", "gpt-2"]
        let ref = try PythonReference.run(["model": path, "texts": trickyStrings, "pre": names])
        let byPre = try #require(ref["by_pre"] as? [String: [[Int]]])
        for name in names {
            let tok = try Tokenizer(
                model: "gpt2", pre: name, tokens: #require(file.stringArray("tokenizer.ggml.tokens")),
                tokenTypes: file.intArray("tokenizer.ggml.token_type"), merges: file.stringArray("tokenizer.ggml.merges"),
                bos: 1, eos: 2)
            let expected = try #require(byPre[name])
            for (i, text) in trickyStrings.enumerated() {
                let ids = tok.encode(text, addBOS: false, parseSpecial: true)
                #expect(ids.map(Int.init) == expected[i], "\(name): \(text.debugDescription)")
                #expect(tok.decode(ids) == text)
            }
        }
    }

    @Test func decodeRoundTripsExactly() throws {
        guard let tok = try loadDefaultTokenizer() else { return }
        for text in trickyStrings {
            #expect(tok.decode(tok.encode(text, addBOS: false, parseSpecial: true)) == text)
            #expect(tok.decode(tok.encode(text, addBOS: false, parseSpecial: false)) == text)
            #expect(tok.decode(tok.encode(text, addBOS: true, parseSpecial: true), skipSpecial: true)
                == text.replacingOccurrences(of: "<|im_start|>", with: "").replacingOccurrences(of: "<|im_end|>", with: "")
                    .replacingOccurrences(of: "<|endoftext|>", with: ""))
        }
        let specials = tok.encode("<|im_start|>user<|im_end|>", addBOS: false, parseSpecial: true)
        #expect(specials.count == 3 && specials.first == 1 && specials.last == 2)
        #expect(!tok.encode("<|im_start|>", addBOS: false, parseSpecial: false).contains(1))
    }

    @Test func splitsLikeReferenceExpressions() throws {
        let ref = try PythonReference.run(["split": splitStrings])
        let rules = try #require(ref["split"] as? [String: Any])
        for rule in PreTokenizer.allCases {
            let cases = try #require(rules[rule.rawValue] as? [[String: Any]])
            for (i, text) in splitStrings.enumerated() {
                let bytes = Array(text.utf8)
                let pieces = rule.split(text).map { String(decoding: bytes[$0], as: UTF8.self) }
                #expect(pieces == (cases[i]["regex"] as? [String]), "\(rule) llama.cpp expressions: \(text.debugDescription)")
                if let hf = cases[i]["hf"] as? [String] {
                    #expect(pieces == hf, "\(rule) tokenizers: \(text.debugDescription)")
                }
            }
        }
    }

    @Test func preTokenizerNames() {
        #expect(PreTokenizer(ggufName: "smollm") == .smollm)
        #expect(PreTokenizer(ggufName: "llama-bpe") == .llama3)
        #expect(PreTokenizer(ggufName: "qwen2") == .qwen2)
        #expect(PreTokenizer(ggufName: "gpt-2") == .gpt2)
        #expect(PreTokenizer(ggufName: "default") == .default)
        #expect(PreTokenizer(ggufName: "no-such-rule") == nil)
        #expect(throws: TokenizerError.self) {
            try Tokenizer(model: "gpt2", pre: "no-such-rule", tokens: ["a"], merges: [])
        }
        #expect(throws: TokenizerError.self) { try Tokenizer(model: "wordpiece", tokens: ["a"]) }
        #expect(throws: TokenizerError.self) { try Tokenizer(model: "gpt2", pre: "smollm", tokens: ["a"]) }
        #expect(throws: TokenizerError.self) { try Tokenizer(model: "llama", tokens: ["a"], eos: 7) }
    }

    @Test func missingVocabularyIsAClearError() throws {
        // A GGUF v3 header with no tensors and only `tokenizer.ggml.model`.
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }
        let bytes = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
            + str("tokenizer.ggml.model") + le(UInt32(8)) + str("gpt2")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("valet-tok-\(getpid()).gguf")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try GGUFFile(path: url.path)
        #expect(throws: TokenizerError(file: url.path, "missing metadata 'tokenizer.ggml.tokens'")) {
            try Tokenizer(gguf: file)
        }
        let template = ChatTemplate(gguf: file)
        #expect(template.family == .chatml && template.warning != nil)
    }

    // MARK: SentencePiece with a hand-built vocabulary

    @Test func sentencePieceMergesByScoreWithByteFallback() throws {
        let tok = try tinySentencePiece()
        #expect(tok.model == .llama)
        #expect(tok.addBOSByDefault)
        #expect(tok.addSpacePrefix)
        func id(_ t: String) -> Int32 { tok.token(forText: t)! }
        // "▁hello▁world": merges prefer the higher score; "▁world" is reachable through "▁w" + "or" ... "ld".
        let ids = tok.encode("hello world", addBOS: true, parseSpecial: false)
        #expect(ids == [1, id("▁hello"), id("▁world")])
        #expect(tok.decode(ids, skipSpecial: true) == "hello world")
        // "ü" is not a piece: it falls back to its two UTF-8 bytes.
        let fallback = tok.encode("hü", addBOS: false, parseSpecial: false)
        #expect(fallback == [id("▁"), id("h"), id("<0xC3>"), id("<0xBC>")])
        #expect(tok.bytes(of: id("<0xC3>")) == [0xC3])
        #expect(tok.decode(fallback) == "hü")
        // Spaces are pieces too, and survive the round trip.
        let spaced = tok.encode("  hello\n", addBOS: false, parseSpecial: false)
        #expect(spaced == [id("▁▁"), id("▁hello"), id("\n")])
        #expect(tok.decode(spaced) == "  hello\n")
        // An emoji is four byte tokens; the streaming detokenizer only emits it whole.
        let emoji = tok.encode("😀", addBOS: false, parseSpecial: false)
        #expect(emoji == [id("▁")] + [0xF0, 0x9F, 0x98, 0x80].map { id(String(format: "<0x%02X>", $0)) })
        #expect(tok.decode(emoji) == "😀")
    }

    @Test func sentencePieceSpecialsAndSpacePrefix() throws {
        let tok = try tinySentencePiece()
        func id(_ t: String) -> Int32 { tok.token(forText: t)! }
        // After a special token the text gets its own space prefix, as llama.cpp does.
        let ids = tok.encode("<s>hello</s>", addBOS: false, parseSpecial: true)
        #expect(ids == [1, id("▁hello"), 2])
        #expect(tok.decode(ids) == "<s>hello</s>")
        #expect(tok.encode("<s>", addBOS: false, parseSpecial: false).contains(1) == false)
        #expect(tok.endOfGenerationTokens == [2])
        // Without token types, `<0xNN>` entries are still recognised as the byte fallback.
        var bare = try Tokenizer(model: "llama", tokens: ["<unk>", "<s>", "</s>", "<0xC3>", "<0xBC>", "▁", "h"],
                                 bos: 1, eos: 2, unknown: 0)
        #expect(bare.encode("hü", addBOS: false, parseSpecial: false) == [5, 6, 3, 4])
        #expect(bare.decode([5, 6, 3, 4]) == "hü")
        bare = try Tokenizer(model: "llama", tokens: ["<unk>", "h"], unknown: 0)
        // No BOS in this vocabulary, and every byte of "▁ü" missing: one unknown token per byte.
        #expect(bare.encode("ü", addBOS: true, parseSpecial: false) == [0, 0, 0, 0, 0])
        let noPrefix = try tinySentencePiece(addSpacePrefix: false)
        #expect(noPrefix.encode("hello", addBOS: false, parseSpecial: false) == [id("hello")])
        #expect(noPrefix.decode([id("▁hello")]) == " hello")
    }

    // MARK: Streaming

    @Test func streamingHoldsBackSplitCharacters() throws {
        var s = StreamingDetokenizer()
        let emoji = Array("😀".utf8)
        #expect(s.append(Array("a".utf8) + emoji.prefix(1)) == "a")
        #expect(s.hasPendingBytes)
        #expect(s.append(Array(emoji[1..<3])) == "")
        #expect(s.append([emoji[3]] + Array("é".utf8).prefix(1)) == "😀")
        #expect(s.append([Array("é".utf8)[1]]) == "é")
        #expect(!s.hasPendingBytes)
        // Bytes that can never complete a character are shown as U+FFFD instead of being held forever.
        #expect(s.append([0xE2, 0x41]) == "\u{FFFD}A")
        #expect(s.append([0xF0, 0x9F]) == "")
        #expect(s.flush() == "\u{FFFD}")
        #expect(s.flush() == "")
    }

    @Test func streamingDefaultModelTokensNeverYieldHalfCharacters() throws {
        guard let tok = try loadDefaultTokenizer() else { return }
        for text in trickyStrings {
            var s = StreamingDetokenizer()
            var out = ""
            for t in tok.encode(text, addBOS: false, parseSpecial: true) {
                let piece = s.append(token: t, from: tok)
                #expect(!piece.contains("\u{FFFD}"), "half a character streamed for \(text.debugDescription)")
                out += piece
            }
            out += s.flush()
            #expect(out == text)
        }
    }
}
