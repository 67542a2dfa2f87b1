// The JSON Schema keywords beyond structure: pattern (against Foundation's regex engine), format, integer and number
// bounds (against every value near them), allOf merging, the 400s naming each keyword, and the budget rule on them.
import Foundation
import Inference
import TestSupport
import Testing
@testable import OpenAIAPI

private func schema(_ json: String) -> JSONValue {
    JSONValue.parse(Array(json.utf8))!
}

private func grammar(_ json: String) throws -> CompiledGrammar {
    try CompiledGrammar(try JSONSchemaCompiler.grammar(for: schema(json), param: "s"))
}

/// The whole text is a complete answer.
private func matches(_ g: CompiledGrammar, _ text: String) -> Bool {
    var m = GrammarMatcher(g)
    return m.advance(Array(text.utf8)) && m.isComplete
}

private func refusal(_ json: String) -> String? {
    do {
        _ = try JSONSchemaCompiler.grammar(for: schema(json), param: "s")
        return nil
    } catch let error as APIError {
        return error.param
    } catch {
        return "\(error)"
    }
}

@Suite struct SchemaKeywordTests {
    @Test func patternsAgreeWithFoundationOnEveryShortString() throws {
        let patterns = ["^[a-c]+$", "ab", "^a|c$", "^(ab|b)*c?$", "b{2}", "^a{1,3}b?$", "^[^a]c", "^a.c$", "(?:ac|ca)$",
                        "^\\d\\w$", "^[a-c\\d]{2}$", "^(?<x>a)b+$", "^a*?c$"]
        let alphabet = ["a", "b", "c", "1", "_", " "]
        var strings = [""]
        var layer = [""]
        for _ in 0..<4 {
            layer = layer.flatMap { s in alphabet.map { s + $0 } }
            strings += layer
        }
        for p in patterns {
            let g = try grammar(#"{"type":"string","pattern":\#(JSONText.quoted(p))}"#)
            let regex = try NSRegularExpression(pattern: p)
            for s in strings {
                let found = regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
                #expect(matches(g, JSONText.quoted(s)) == found, "pattern \(p) on '\(s)'")
                if matches(g, JSONText.quoted(s)) != found { return }
            }
        }
    }

    @Test func patternCharactersAreWrittenWithJSONEscapes() throws {
        let g = try grammar(#"{"type":"string","pattern":"^a\"b\\\\c\\n\\x01/$"}"#)
        #expect(matches(g, #""a\"b\\c\n\u0001/""#))
        #expect(!matches(g, #""a"b\c""#))
        let dot = try grammar(#"{"type":"string","pattern":"^.$"}"#)
        for ok in [#""\"""#, #""\\""#, #""é""#, #""\t""#] { #expect(matches(dot, ok), "\(ok)") }
        for bad in [#""\n""#, #""ab""#, #""""#] { #expect(!matches(dot, bad), "\(bad)") }
    }

    @Test func unsupportedRegexIsA400NamingThePattern() {
        for p in ["(?=a)b", "(?<!a)b", "(a)\\1", "\\bword", "a{", "^(^a)$", "a$b", "[]", "\\p{L}", "*a", "(?i)a", "a**"] {
            #expect(refusal(#"{"type":"string","pattern":\#(JSONText.quoted(p))}"#) == "s.pattern", "\(p)")
        }
    }

    @Test func patternsMeetLengthBounds() throws {
        let g = try grammar(#"{"type":"string","pattern":"^[a-z]+$","minLength":2,"maxLength":4}"#)
        for (s, ok) in [("a", false), ("ab", true), ("abcd", true), ("abcde", false), ("a1", false)] {
            #expect(matches(g, JSONText.quoted(s)) == ok, "\(s)")
        }
        #expect(refusal(#"{"type":"string","pattern":"^a{5}$","maxLength":3}"#) == "s.maxLength")
    }

    @Test func formatsAcceptTheirValuesOnly() throws {
        let cases: [(String, [String], [String])] = [
            ("date", ["2024-02-29", "2023-12-31", "0001-01-01", "2000-02-29"],
             ["2023-02-29", "1900-02-29", "2024-04-31", "0000-01-01", "2024-1-01", "2024-13-01"]),
            ("time", ["12:30:00Z", "23:59:59.123456+05:30", "00:00:00-00:00"],
             ["24:00:00Z", "12:30:00", "12:60:00Z", "12:30:00.1234567Z"]),
            ("date-time", ["2024-06-01T08:00:00Z", "1999-12-31T23:59:59.5-08:00"], ["2024-06-01 08:00:00Z", "2024-06-01T08:00Z"]),
            ("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000", "123E4567-E89B-12D3-A456-42661417400"]),
            ("email", ["ada@example.com", "a.b+c@mail.co.uk"], ["ada@localhost", "@example.com", "a..b@x.com", "a@-x.com"]),
        ]
        for (format, good, bad) in cases {
            let g = try grammar(#"{"type":"string","format":"\#(format)"}"#)
            for s in good { #expect(matches(g, JSONText.quoted(s)), "\(format) \(s)") }
            for s in bad { #expect(!matches(g, JSONText.quoted(s)), "\(format) \(s)") }
        }
        #expect(refusal(#"{"type":"string","format":"hostname"}"#) == "s.format")
        #expect(refusal(#"{"type":"string","format":"date","pattern":"^1"}"#) == nil)
        let both = try grammar(#"{"type":"string","format":"date","pattern":"^1"}"#)
        #expect(matches(both, #""1999-01-01""#) && !matches(both, #""2000-01-01""#))
    }

    @Test func integerBoundsAcceptExactlyTheRange() throws {
        let ranges: [(String, ClosedRange<Int>)] = [
            (#""minimum":0,"maximum":9"#, 0...9), (#""minimum":-15,"maximum":7"#, -15...7),
            (#""minimum":17,"maximum":1234"#, 17...1234), (#""exclusiveMinimum":-101,"exclusiveMaximum":-3"#, -100...(-4)),
            (#""minimum":99.5,"maximum":100.5"#, 100...100), (#""minimum":-7"#, -7...5000),
            (#""maximum":42"#, -5000...42), (#""minimum":5,"exclusiveMinimum":10"#, 11...5000),
        ]
        for (bounds, range) in ranges {
            let g = try grammar(#"{"type":"integer",\#(bounds)}"#)
            for v in -1300...1300 {
                #expect(matches(g, String(v)) == range.contains(v), "\(bounds) \(v)")
                if matches(g, String(v)) != range.contains(v) { return }
            }
            for v in [range.lowerBound, range.upperBound, 5000, -5000] {
                #expect(matches(g, String(v)) == range.contains(v), "\(bounds) \(v)")
            }
            #expect(!matches(g, "-0") && !matches(g, "007") && !matches(g, "1.0"))
        }
        #expect(refusal(#"{"type":"integer","minimum":5,"maximum":4}"#) == "s.minimum")
        #expect(refusal(#"{"type":"integer","exclusiveMinimum":true}"#) == "s.exclusiveMinimum")
    }

    @Test func numberBoundsAllowDecimalsInside() throws {
        let g = try grammar(#"{"type":"number","minimum":0,"maximum":1}"#)
        for ok in ["0", "1", "0.5", "0.999999", "0.0"] { #expect(matches(g, ok), "\(ok)") }
        for bad in ["1.5", "-0.5", "2", "1e0", "0.1234567", "-1"] { #expect(!matches(g, bad), "\(bad)") }
        let h = try grammar(#"{"type":"number","exclusiveMinimum":-2,"exclusiveMaximum":3}"#)
        for ok in ["-1", "-1.5", "2", "2.75", "0", "-0.25"] { #expect(matches(h, ok), "\(ok)") }
        for bad in ["-2", "3", "-2.5", "3.0"] { #expect(!matches(h, bad), "\(bad)") }
        #expect(refusal(#"{"type":"number","minimum":0.2,"maximum":0.8}"#) == "s.minimum")
    }

    @Test func allOfMergesObjectSchemas() throws {
        // A forbids every property but its own, so b (required by the other part) makes the whole unsatisfiable.
        #expect(refusal(#"""
            {"allOf":[{"$ref":"#/$defs/A"},{"type":"object","properties":{"b":{"type":"integer"}},"required":["b"]}],
             "$defs":{"A":{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"],"additionalProperties":false}}}
            """#) == "s.allOf")
        let h = try grammar(#"""
            {"allOf":[{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"]},
                      {"properties":{"b":{"type":"integer","minimum":1}},"required":["b"]},
                      {"properties":{"a":{},"b":{"description":"any"}},"additionalProperties":false}]}
            """#)
        #expect(matches(h, #"{"a":true,"b":3}"#))
        #expect(!matches(h, #"{"a":true}"#))
        #expect(!matches(h, #"{"a":true,"b":0}"#))
        #expect(!matches(h, #"{"a":true,"b":3,"c":1}"#))
        #expect(refusal(#"{"allOf":[{"type":"string"},{"maxLength":3}]}"#) == "s.allOf")
        #expect(refusal(#"{"allOf":[{"properties":{"a":{}},"required":["a"]},{"properties":{"b":{}},"additionalProperties":false}]}"#) == "s.allOf")
    }

    @Test func aRefBesideConstraintsMerges() throws {
        let g = try grammar(##"{"$ref":"#/$defs/A","required":["a"],"$defs":{"A":{"type":"object","properties":{"a":{"type":"null"}}}}}"##)
        #expect(matches(g, #"{"a":null}"#) && !matches(g, "{}"))
        #expect(refusal(##"{"$ref":"#/$defs/A","maxLength":1,"$defs":{"A":{"type":"string"}}}"##) == "s.$ref")
    }

    @Test func keywordsImplyTheirType() throws {
        let g = try grammar(#"{"maxLength":2}"#)
        #expect(matches(g, #""ab""#) && !matches(g, #""abc""#) && !matches(g, "1"))
        let n = try grammar(#"{"minimum":3,"maximum":4}"#)
        #expect(matches(n, "3") && matches(n, "3.5") && !matches(n, "5"))
    }

    /// The mask walk's fast local automaton against the matcher itself, token by token, at positions inside plain,
    /// bounded and patterned strings, formats and bounded integers, and right after a string closes.
    @Test func masksAgreeWithBruteForceOnSchemaGrammars() throws {
        guard let path = TestModel.path else { return }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let vocab = TokenVocabulary(tokenizer: tokenizer)
        let g = try grammar(#"""
            {"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string","maxLength":3},
             "c":{"type":"string","pattern":"^[a-z]+\\d$"},"d":{"type":"string","format":"date"},
             "e":{"type":"integer","minimum":-20,"maximum":300},"f":{"type":"array","items":{"type":"string"}}},
             "required":["a","b","c","d","e","f"]}
            """#)
        let masker = GrammarMasker(grammar: g, vocabulary: vocab)
        let full = ##"{"a":"x y\"","b":"é\n","c":"ab1","d":"2024-02-29","e":-7,"f":["p","q"]}"##
        let bytes = Array(full.utf8)
        for cut in [1, 6, 9, 11, 12, 17, 19, 27, 29, 36, 45, 52, 54, 60, 63, bytes.count] {
            var m = GrammarMatcher(g)
            let advanced = m.advance(Array(bytes[..<cut]))
            #expect(advanced, "prefix \(cut)")
            let mask = masker.mask(for: m)
            for t in 0..<Int32(vocab.size) {
                let expected: Bool
                if let b = vocab.bytes(of: t) { expected = m.accepts(b) } else { expected = vocab.endOfGeneration.contains(t) && m.isComplete }
                #expect(mask.contains(t) == expected, "prefix \(String(decoding: bytes[..<cut], as: UTF8.self)) token \(t)")
                if mask.contains(t) != expected { return }
            }
        }
    }

    /// The budget rule on the new constructs: even the worst choices within the mask end in a complete answer.
    @Test func tinyBudgetsStillCompleteNewConstructs() throws {
        guard let path = TestModel.path else { return }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let compiler = ConstraintCompiler(vocabulary: TokenVocabulary(tokenizer: tokenizer))
        let schemas = [
            #"{"type":"object","properties":{"d":{"type":"string","format":"date"},"n":{"type":"integer","minimum":-50,"maximum":12345}},"required":["d","n"]}"#,
            #"{"type":"object","properties":{"e":{"type":"string","format":"email"},"p":{"type":"string","pattern":"[a-z]x"}},"required":["e","p"]}"#,
            #"{"type":"object","properties":{"t":{"type":"string","format":"date-time"},"x":{"type":"number","minimum":0,"maximum":1}},"required":["t","x"]}"#,
        ]
        var rng = SystemRandomNumberGenerator()
        for json in schemas {
            let masker = try #require(try compiler.masker(for: .jsonSchema(name: "x", schema: schema(json), strict: true)))
            let needed = try #require(masker.minimumAnswerTokens)
            for budget in [needed, needed + 2, needed + 8] {
                var c = masker.start()
                var used = 0
                var text: [UInt8] = []
                while used < budget {
                    let allowed = c.allowedTokens(remaining: budget - used)
                    let mask = try #require(allowed)
                    let choices = mask.tokens.filter { !compiler.vocabulary.endOfGeneration.contains($0) }
                    if choices.isEmpty { break }
                    let pick = choices.randomElement(using: &rng)!
                    c.accept(pick)
                    text += compiler.vocabulary.bytes(of: pick) ?? []
                    used += 1
                    if c.isFinished { break }
                }
                #expect(c.matcher.isComplete, "budget \(budget) for \(json): \(String(decoding: text, as: UTF8.self))")
                #expect(JSONValue.parse(text) != nil)
            }
        }
    }
}
