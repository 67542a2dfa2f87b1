// The grammar matcher on hand-written grammars, and token masks against a brute-force check of every token.
import Foundation
import Testing
@testable import Inference
import TestSupport

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private let listGrammar = Grammar(root: "list", rules: [
    "list": .sequence([.text("["), .optional(.sequence([.rule("item"), .zeroOrMore(.sequence([.text(","), .rule("item")]))])), .text("]")]),
    "item": .choice([.oneOrMore(.chars(CharClass("0"..."9"))), .rule("list")]),
])

@Suite struct GrammarTests {
    @Test func nestedListsMatchAndCompleteOnlyWhenClosed() throws {
        let g = try CompiledGrammar(listGrammar)
        var m = GrammarMatcher(g)
        #expect(!m.isComplete)
        #expect(m.accepts(bytes("[1,[2,3],[]]")))
        #expect(!m.accepts(bytes("[1,,")))
        #expect(!m.accepts(bytes("]")))
        let advanced189 = m.advance(bytes("[12,[3"))
        #expect(advanced189)
        #expect(!m.isComplete && m.canContinue)
        let advanced419 = m.advance(bytes("x"))
        #expect(!advanced419)
        #expect(m.shortestCompletionLength == 2)
        let advanced963 = m.advance(bytes("]]"))
        #expect(advanced963)
        #expect(m.isComplete && !m.canContinue)
        #expect(g.minimumLength == 2)
    }

    @Test func charClassesMatchWholeUTF8Characters() throws {
        let g = try CompiledGrammar(Grammar(.oneOrMore(.chars(CharClass(anyOf: "\"", negated: true)))))
        let m = GrammarMatcher(g)
        #expect(m.accepts(bytes("héllo ✓ 😀")))
        #expect(!m.accepts(bytes("a\"")))
        #expect(!m.accepts([0xC3, 0x28]))  // invalid continuation byte
        #expect(!m.accepts([0xED, 0xA0, 0x80]))  // a surrogate
        #expect(m.accepts([0xC3]))  // a character cut between tokens is still a prefix
    }

    @Test func boundedRepeatsAndLeftRecursion() throws {
        let g = try CompiledGrammar(Grammar(.repetition(.text("ab"), min: 1, max: 3)))
        var m = GrammarMatcher(g)
        #expect(!m.accepts(bytes("abababab")))
        let advanced260 = m.advance(bytes("abab"))
        #expect(advanced260)
        #expect(m.isComplete && m.canContinue)
        #expect(throws: GrammarError.self) {
            try CompiledGrammar(Grammar(root: "a", rules: ["a": .choice([.text("x"), .sequence([.rule("a"), .text("y")])])]))
        }
        #expect(throws: GrammarError.self) { try CompiledGrammar(Grammar(.rule("missing"))) }
    }

    @Test func masksAgreeWithBruteForceOverTheRealVocabulary() throws {
        guard let path = TestModel.path else { return }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let vocab = TokenVocabulary(tokenizer: tokenizer)
        let g = try CompiledGrammar(listGrammar)
        let masker = GrammarMasker(grammar: g, vocabulary: vocab)
        for prefix in ["", "[", "[1", "[12,", "[[3],", "[1]"] {
            var m = GrammarMatcher(g)
            let advanced575 = m.advance(bytes(prefix))
        #expect(advanced575)
            let mask = masker.mask(for: m)
            for t in 0..<Int32(vocab.size) {
                let expected: Bool
                if let b = vocab.bytes(of: t) { expected = m.accepts(b) } else { expected = vocab.endOfGeneration.contains(t) && m.isComplete }
                #expect(mask.contains(t) == expected, "prefix \(prefix) token \(t)")
                if mask.contains(t) != expected { return }
            }
            #expect(masker.mask(for: m) == mask)
        }
        #expect(masker.statistics.hits >= 6)
    }

    @Test func aTinyBudgetStillEndsInACompleteText() throws {
        guard let path = TestModel.path else { return }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let vocab = TokenVocabulary(tokenizer: tokenizer)
        let g = try CompiledGrammar(Grammar(.sequence([.text("{\"note\":\""), .zeroOrMore(.chars(CharClass(anyOf: "\"\\", negated: true))), .text("\"}")])))
        let masker = GrammarMasker(grammar: g, vocabulary: vocab)
        let needed = try #require(masker.minimumAnswerTokens)
        var rng = SystemRandomNumberGenerator()
        for budget in [needed, needed + 1, needed + 3] {
            var c = masker.start()
            var used = 0
            while !c.matcher.isComplete || c.matcher.canContinue, used < budget {
                let allowed = c.allowedTokens(remaining: budget - used)
                let mask = try #require(allowed)
                // The worst case for a budget: always the longest allowed token that is not an ending.
                let choices = mask.tokens.filter { !vocab.endOfGeneration.contains($0) }
                if choices.isEmpty { break }
                let pick = choices.randomElement(using: &rng)!
                c.accept(pick)
                used += 1
                if c.isFinished { break }
            }
            #expect(c.matcher.isComplete, "budget \(budget)")
        }
    }
}
