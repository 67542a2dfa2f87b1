// The grammar a forced tool call must follow: the syntax's markers around `{"name": <a tool>, "<arguments key>":
// <that tool's arguments>}`, one call or (parallel) several. The arguments' grammars come from the JSON Schema compiler.
extension ToolCallSyntax {
    /// `arguments` maps each callable tool's name to the grammar of its arguments object; a rule of the result
    /// holds each, so several calls share them.
    public func grammar(arguments: [(name: String, grammar: GrammarExpr)], parallel: Bool) -> Grammar {
        var rules: [String: GrammarExpr] = [:]
        var calls: [GrammarExpr] = []
        for (i, tool) in arguments.enumerated() {
            let rule = "tool\(i)-arguments"
            rules[rule] = tool.grammar
            calls.append(.sequence([
                .text(#"{"name": \#(ToolJSON.quote(tool.name)), "\#(argumentsKey)": "#), .rule(rule), .text("}"),
            ]))
        }
        rules["call"] = .choice(calls)
        let body: GrammarExpr = parallel
            ? .sequence([.rule("call"), .zeroOrMore(.sequence([.text(separator), .rule("call")]))])
            : .rule("call")
        rules["root"] = .sequence([.text(start), body, .text(end)])
        return Grammar(root: "root", rules: rules)
    }
}

extension ToolCallSyntax {
    /// Where an `auto` reply turns into calls: the marker, or for a bare-JSON syntax an opening brace as the reply's
    /// first byte. The call grammar begins with it.
    public var lazyTrigger: LazyGrammarConstraint.Trigger {
        trigger.isEmpty ? .leading(UInt8(ascii: "{")) : .text(Array(trigger.utf8))
    }
}
