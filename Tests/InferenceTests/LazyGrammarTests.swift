// The lazy grammar on a tiny hand-made vocabulary: free until the call marker, then masked by the call grammar,
// with the marker split across tokens, ending inside a token with more text after it, or never written.
import Testing
@testable import Inference

/// Single printable ASCII bytes and newline, a few longer pieces, a special token without bytes (the marker as one
/// token), and an end-of-generation token (the last id).
private let pieces: [String] = (0x20...0x7E).map { String(UnicodeScalar(UInt8($0))) } + ["\n", "Sure", "<tool", "_call>", "<tool_call>\n{\"", "ll>", "<t", "ool_ca", "{\"name", "_call>X"]
private let special = Int32(pieces.count)
private let eog = Int32(pieces.count + 1)
private let vocabulary = TokenVocabulary(bytes: pieces.map { Array($0.utf8) } + [nil, nil], endOfGeneration: [eog])

private func token(_ piece: String) -> Int32 { Int32(pieces.firstIndex(of: piece)!) }

/// Calls of `f` whose arguments are `{"n": <digits>}`.
private let callMasker: GrammarMasker = {
    let arguments = GrammarExpr.sequence([.text(#"{"n": "#), .oneOrMore(.chars(CharClass("0"..."9"))), .text("}")])
    let grammar = ToolCallSyntax.hermes.grammar(arguments: [("f", arguments)], parallel: false)
    return GrammarMasker(grammar: try! CompiledGrammar(grammar), vocabulary: vocabulary)
}()

/// Feeds tokens, checking each against the mask the constraint gives before it.
private func feed(_ c: inout LazyGrammarConstraint, _ tokens: [Int32], remaining: Int = 100) {
    for t in tokens {
        if let mask = c.allowedTokens(remaining: remaining) { #expect(mask.contains(t), "token \(pieces[Int(t)])") }
        c.accept(t)
    }
}

/// Picks tokens from the masks (the allowed one of highest id each step: longer pieces, and "}" over digits) until the constraint finishes; the text it made.
private func complete(_ c: inout LazyGrammarConstraint, budget: Int) -> (text: String, used: Int) {
    var out: [UInt8] = []
    var used = 0
    while !c.isFinished && used < budget {
        guard let mask = c.allowedTokens(remaining: budget - used) else { break }
        let pick = mask.tokens.last { $0 != eog && $0 != special }!
        out += vocabulary.bytes(of: pick)!
        c.accept(pick)
        used += 1
    }
    return (String(decoding: out, as: UTF8.self), used)
}

@Suite struct LazyGrammarTests {
    @Test func freeUntilTheMarkerThenMaskedToAValidCall() {
        var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
        #expect(c.allowedTokens(remaining: 100) == nil)
        feed(&c, [token("Sure"), token(","), token(" "), token("<"), token("t")])
        #expect(c.phase == .waiting && c.allowedTokens(remaining: 100) == nil)
        // The marker "<tool_call>" split over three tokens, the last of which ends it exactly.
        feed(&c, [token("<tool"), token("_call>")])
        #expect(c.phase == .on)
        let mask = c.allowedTokens(remaining: 100)!
        #expect(mask.contains(token("\n")) && !mask.contains(token("S")) && !mask.contains(eog))
        let (rest, _) = complete(&c, budget: 100)
        #expect(rest == "\n{\"name\": \"f\", \"arguments\": {\"n\": 9}}\n</tool_call>")
        #expect(c.isFinished)
    }

    @Test func aMarkerEndingMidTokenCarriesTheRestIntoTheGrammar() {
        // "<t" + "ool_ca" + "ll>" makes the marker across three tokens with no token boundary at its start.
        var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
        feed(&c, [token("x"), token("<t"), token("ool_ca"), token("ll>")])
        #expect(c.phase == .on)
        // One token that holds the whole marker and the start of the call after it.
        var d = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
        feed(&d, [token("Sure"), token(" "), token("<tool_call>\n{\"")])
        #expect(d.phase == .on)
        #expect(d.matcher.accepts(Array("name\": \"f\"".utf8)))
        #expect(!d.matcher.accepts(Array("{".utf8)))
        let (rest, _) = complete(&d, budget: 100)
        #expect(rest == "name\": \"f\", \"arguments\": {\"n\": 9}}\n</tool_call>")
    }

    @Test func textAfterTheMarkerThatCannotFollowTurnsTheGrammarOff() {
        // "<tool_call>" then "X" in the same token: the call grammar wants "\n" there, so the reply stays free text.
        var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
        feed(&c, [token("<tool"), token("_call>X")])
        #expect(c.phase == .off && c.allowedTokens(remaining: 100) == nil && !c.isFinished)
        // A later marker does not switch it back on: the scanner reads the reply as text from the first one.
        feed(&c, [token("<tool_call>\n{\"")])
        #expect(c.phase == .off)
    }

    @Test func aLeadingTriggerIsOnlyTheReplysFirstByte() {
        let bare = ToolCallSyntax.llama3.grammar(
            arguments: [("f", .text("{}"))], parallel: false)
        let masker = GrammarMasker(grammar: try! CompiledGrammar(bare), vocabulary: vocabulary)
        var call = LazyGrammarConstraint(masker: masker, trigger: ToolCallSyntax.llama3.lazyTrigger)
        feed(&call, [token(" "), token("\n")])
        #expect(call.phase == .waiting)
        feed(&call, [token("{\"name")])
        #expect(call.phase == .on)
        let (rest, _) = complete(&call, budget: 100)
        #expect(rest == "\": \"f\", \"parameters\": {}}")
        var prose = LazyGrammarConstraint(masker: masker, trigger: ToolCallSyntax.llama3.lazyTrigger)
        feed(&prose, [token("Sure"), token(" "), token("{")])
        #expect(prose.phase == .off && prose.allowedTokens(remaining: 100) == nil)
    }

    @Test func aMarkerThatIsOneSpecialTokenSwitchesItOn() {
        var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger, triggerToken: special)
        feed(&c, [token("Sure"), special])
        #expect(c.phase == .on)
        let (rest, _) = complete(&c, budget: 100)
        #expect(rest == "\n{\"name\": \"f\", \"arguments\": {\"n\": 9}}\n</tool_call>")
        // Without the token named, a special token is no text and leaves the reply free.
        var d = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
        feed(&d, [special])
        #expect(d.phase == .waiting)
    }

    @Test func tooLittleBudgetForACallHoldsBackOnlyTheTokensThatWouldStartOne() {
        let needed = callMasker.minimumTokens(from: {
            var m = GrammarMatcher(callMasker.grammar)
            m.advance(Array("<tool_call>".utf8))
            return m
        }())!
        var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger, triggerToken: special)
        #expect(c.allowedTokens(remaining: needed + 1) == nil)
        let fresh = c.allowedTokens(remaining: needed)!
        // Only a token holding the whole marker can complete it from nothing.
        #expect(!fresh.contains(token("<tool_call>\n{\"")) && !fresh.contains(special))
        #expect(fresh.contains(token("<tool")) && fresh.contains(token("_call>")) && fresh.contains(eog))
        #expect(fresh.allowedCount == vocabulary.size - 2)
        feed(&c, [token("Sure"), token("<tool")], remaining: needed)
        let split = c.allowedTokens(remaining: needed)!
        // After "<tool", the tokens that finish the marker are held back; the rest, "S" or "ll>" say, are not.
        #expect(!split.contains(token("_call>")) && !split.contains(token("_call>X")))
        #expect(split.contains(token("S")) && split.contains(token("ll>")) && split.contains(token("<t")))
        feed(&c, [token("<t"), token("ool_ca")], remaining: needed)
        #expect(!c.allowedTokens(remaining: needed)!.contains(token("ll>")))
        #expect(c.phase == .waiting)

        let bare = ToolCallSyntax.llama3.grammar(arguments: [("f", .text("{}"))], parallel: false)
        let masker = GrammarMasker(grammar: try! CompiledGrammar(bare), vocabulary: vocabulary)
        var lead = LazyGrammarConstraint(masker: masker, trigger: ToolCallSyntax.llama3.lazyTrigger)
        let start = lead.allowedTokens(remaining: 2)!
        #expect(!start.contains(token("{")) && !start.contains(token("{\"name")) && start.contains(token("S")))
        #expect(lead.allowedTokens(remaining: masker.minimumAnswerTokens!) == nil)
    }

    @Test func onceOnTheBudgetRuleHolds() {
        let needed = callMasker.minimumTokens(from: {
            var m = GrammarMatcher(callMasker.grammar)
            m.advance(Array("<tool_call>".utf8))
            return m
        }())!
        for budget in [needed, needed + 2] {
            var c = LazyGrammarConstraint(masker: callMasker, trigger: ToolCallSyntax.hermes.lazyTrigger)
            feed(&c, [token("<tool"), token("_call>")])
            // The worst picker for a budget: the longest digit run it is let write.
            var used = 0
            while !c.isFinished && used < budget {
                let mask = c.allowedTokens(remaining: budget - used)!
                let pick = mask.contains(token("7")) ? token("7") : mask.tokens.first { $0 != eog }!
                c.accept(pick)
                used += 1
            }
            #expect(c.isFinished, "budget \(budget)")
            #expect(used <= budget)
        }
    }
}
