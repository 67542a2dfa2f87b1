// The grammar of a tool call (forced by `tool_choice` "required" or a named function, or switched on at the call
// marker under `auto`): the template family's call markers around a callable tool's name and arguments that follow
// its parameters schema.
import Inference

extension ConstraintCompiler {
    /// The masker forcing one call (or, with `parallel`, one or more) of the callable tools, or a 400 naming the
    /// parameters schema that cannot be compiled. `parallel` defaults to the request's wish under `required`.
    public func masker(forcing tools: ChatTools, syntax: ToolCallSyntax, parallel: Bool? = nil) throws -> GrammarMasker {
        let start = ContinuousClock.now
        var rules: [String: GrammarExpr] = [:]
        var arguments: [(name: String, grammar: GrammarExpr)] = []
        for (i, tool) in tools.callable.enumerated() {
            let index = tools.tools.firstIndex { $0.name == tool.name } ?? i
            let param = "tools[\(index)].function.parameters"
            let own = try JSONSchemaCompiler.grammar(for: tool.parameters, param: param)
            // Each schema's rules live under their own prefix, so two tools' `$ref`s and helpers never collide.
            let prefix = "t\(i)-"
            for (name, expr) in own.rules { rules[prefix + name] = Self.renamed(expr, prefix: prefix) }
            arguments.append((tool.name, .rule(prefix + own.root)))
        }
        var call = syntax.grammar(arguments: arguments, parallel: parallel ?? (tools.parallel && tools.choice == .required))
        for (name, expr) in rules { call.rules[name] = expr }
        let compiled: CompiledGrammar
        do {
            compiled = try CompiledGrammar(call)
        } catch {
            throw APIError.invalid("The tools' parameters cannot be compiled: \(error.message).", param: "tools")
        }
        let masker = GrammarMasker(grammar: compiled, vocabulary: vocabulary)
        reportCompile(since: start)
        return masker
    }

    private static func renamed(_ expr: GrammarExpr, prefix: String) -> GrammarExpr {
        switch expr {
        case .rule(let name): .rule(prefix + name)
        case .sequence(let items): .sequence(items.map { renamed($0, prefix: prefix) })
        case .choice(let items): .choice(items.map { renamed($0, prefix: prefix) })
        case .repetition(let inner, let min, let max): .repetition(renamed(inner, prefix: prefix), min: min, max: max)
        case .graph(let g): .graph(g.mappingLabels { renamed($0, prefix: prefix) })
        case .literal, .chars: expr
        }
    }
}
