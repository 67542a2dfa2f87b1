// JSON Schema → grammar: the subset real clients (pydantic, LangChain) send. Any other keyword is refused with a
// 400 naming it, never silently ignored.
import Inference

struct JSONSchemaCompiler {
    let root: JSONValue
    let base: String
    var rules: [String: GrammarExpr] = JSONGrammar.anyValueRules
    var refRules: [String: String] = [:]
    var charRules: [ScalarSet: String] = [:]

    /// Keywords that only annotate: they never change which documents are valid.
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "discriminator", "$defs", "definitions",
    ]
    static let supported: Set<String> = [
        "type", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
        "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    ]
    /// The keywords that imply a type when `type` is left out (a schema with none of them allows any value).
    static let impliedTypes: [(type: String, keywords: [String])] = [
        ("object", ["properties", "required", "additionalProperties"]),
        ("array", ["items", "prefixItems", "minItems", "maxItems"]),
        ("string", ["pattern", "format", "minLength", "maxLength"]),
        ("number", ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
    ]

    /// `param` is where the schema sits in the request (`response_format.json_schema.schema`).
    static func grammar(for schema: JSONValue, param: String) throws -> Grammar {
        var c = JSONSchemaCompiler(root: schema, base: param)
        let top = try c.compile(schema, path: param)
        c.rules["root"] = top
        return Grammar(root: "root", rules: c.rules)
    }

    mutating func compile(_ schema: JSONValue, path: String) throws -> GrammarExpr {
        if case .bool(let b) = schema {
            guard b else { throw APIError.invalid("The schema at '\(path)' is false: no value can match it.", param: path) }
            return .rule("json-value")
        }
        guard case .object(let s) = schema else {
            throw APIError.invalid("A schema must be an object or a boolean, got \(schema.typeName).", param: path)
        }
        for key in s.keys.sorted() where !Self.supported.contains(key) && !Self.annotations.contains(key) {
            throw APIError.invalid("JSON Schema keyword '\(key)' is not supported in structured outputs.", param: "\(path).\(key)")
        }
        if let f = s["format"] {
            guard case .string(let name) = f, StringFormat.patterns[name] != nil else {
                throw APIError.invalid("'format' must be one of \(StringFormat.names.joined(separator: ", ")).", param: "\(path).format")
            }
        }
        // Keywords that constrain, beside the one being looked at.
        let constraints = { (except: String) in s.filter { $0.key != except && !Self.annotations.contains($0.key) } }
        if let ref = s["$ref"] {
            let siblings = constraints("$ref")
            if siblings.isEmpty { return try reference(ref, path: "\(path).$ref") }
            return try object(mergedObject([.object(["$ref": ref]), .object(siblings)], param: "\(path).$ref"), path: path)
        }
        if let c = s["const"] { return .text(JSONGrammar.literal(c)) }
        if let e = s["enum"] {
            guard case .array(let values) = e, !values.isEmpty else {
                throw APIError.invalid("'enum' must be a non-empty array.", param: "\(path).enum")
            }
            return .choice(values.map { .text(JSONGrammar.literal($0)) })
        }
        for key in ["anyOf", "oneOf"] {
            if let list = s[key] {
                guard case .array(let items) = list, !items.isEmpty else {
                    throw APIError.invalid("'\(key)' must be a non-empty array of schemas.", param: "\(path).\(key)")
                }
                return .choice(try items.enumerated().map { try compile($0.element, path: "\(path).\(key)[\($0.offset)]") })
            }
        }
        if let all = s["allOf"] {
            guard case .array(let items) = all, !items.isEmpty else {
                throw APIError.invalid("'allOf' must be a non-empty array of schemas.", param: "\(path).allOf")
            }
            let siblings = constraints("allOf")
            if items.count == 1 && siblings.isEmpty { return try compile(items[0], path: "\(path).allOf[0]") }
            let parts = items + (siblings.isEmpty ? [] : [.object(siblings)])
            return try object(mergedObject(parts, param: "\(path).allOf"), path: path)
        }
        var types: [String]
        switch s["type"] {
        case nil:
            types = Self.impliedTypes.filter { t in t.keywords.contains { s[$0] != nil } }.map(\.type)
            if types.isEmpty { return .rule("json-value") }
        case .string(let t)?: types = [t]
        case .array(let list)?:
            types = try list.map {
                guard case .string(let t) = $0 else { throw APIError.invalid("'type' entries must be strings.", param: "\(path).type") }
                return t
            }
        case let other?:
            throw APIError.invalid("'type' must be a string or an array, got \(other.typeName).", param: "\(path).type")
        }
        return .choice(try types.map { try typed($0, s, path: path) })
    }

    func integer(_ s: [String: JSONValue], _ key: String, path: String) throws -> Int? {
        guard let v = s[key] else { return nil }
        guard case .number(let x) = v, x >= 0, x.rounded() == x, x <= 10_000 else {
            throw APIError.invalid("'\(key)' must be an integer between 0 and 10000.", param: "\(path).\(key)")
        }
        return Int(x)
    }

    mutating func typed(_ type: String, _ s: [String: JSONValue], path: String) throws -> GrammarExpr {
        switch type {
        case "string": return try string(s, path: path)
        case "integer", "number": return try number(s, integer: type == "integer", path: path)
        case "boolean": return .choice([.text("true"), .text("false")])
        case "null": return .text("null")
        case "object": return try object(s, path: path)
        case "array": return try array(s, path: path)
        default:
            throw APIError.invalid("Unknown JSON Schema type '\(type)'.", param: "\(path).type")
        }
    }

    /// A string: plain with its length bounds, or, with `pattern` and/or `format`, the automaton of what both allow
    /// cut to the length bounds.
    mutating func string(_ s: [String: JSONValue], path: String) throws -> GrammarExpr {
        let min = try integer(s, "minLength", path: path) ?? 0
        let max = try integer(s, "maxLength", path: path)
        if let max, max < min { throw APIError.invalid("'maxLength' is below 'minLength'.", param: "\(path).maxLength") }
        var automaton: CharAutomaton?
        var step = "pattern"
        let empty = { (step: String) in
            APIError.invalid("No string meets this schema's string constraints (up to '\(step)').", param: "\(path).\(step)")
        }
        do {
            if let p = s["pattern"] {
                guard case .string(let source) = p else {
                    throw APIError.invalid("'pattern' must be a string.", param: "\(path).pattern")
                }
                do {
                    automaton = try CharAutomaton(try RegexPattern.parse(source))
                } catch let error as RegexError {
                    throw APIError.invalid("The pattern is not in the supported subset: \(error.message).", param: "\(path).pattern")
                }
                if automaton!.isEmpty { throw empty(step) }
            }
            if case .string(let name)? = s["format"], let format = StringFormat.automata[name] {
                step = "format"
                automaton = try automaton.map { try $0.intersection(format) } ?? format
                if automaton!.isEmpty { throw empty(step) }
            }
            guard let found = automaton else { return JSONGrammar.string(min: min, max: max) }
            if min > 0 || max != nil {
                step = max != nil ? "maxLength" : "minLength"
                automaton = try found.lengthBounded(min: min, max: max)
                if automaton!.isEmpty { throw empty(step) }
            }
        } catch is CharAutomaton.TooLarge {
            throw APIError.invalid("The string's constraints make too large an automaton (over \(CharAutomaton.stateLimit) states).", param: "\(path).\(step)")
        }
        guard let automaton else { return JSONGrammar.string(min: min, max: max) }
        return .sequence([.text("\""), automaton.graph { stringCharLabel($0) }, .text("\"")])
    }

    /// One character of `set` in a JSON string: the expression itself when it is one class, else a shared rule
    /// (so an automaton's many edges on one set share its escapes).
    mutating func stringCharLabel(_ set: ScalarSet) -> GrammarExpr {
        let ways = JSONGrammar.stringChar(in: set)
        if ways.count == 1 { return ways[0] }
        if let name = charRules[set] { return .rule(name) }
        let name = "char-\(charRules.count)"
        charRules[set] = name
        rules[name] = .choice(ways)
        return .rule(name)
    }

    /// An integer or number within `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum`.
    func number(_ s: [String: JSONValue], integer: Bool, path: String) throws -> GrammarExpr {
        func bound(_ key: String) throws -> Double? {
            guard let v = s[key] else { return nil }
            guard case .number(let x) = v, x.isFinite, abs(x) <= 1e15 else {
                throw APIError.invalid("'\(key)' must be a number between -1e15 and 1e15.", param: "\(path).\(key)")
            }
            return x
        }
        let minimum = try bound("minimum"), exclusiveMinimum = try bound("exclusiveMinimum")
        let maximum = try bound("maximum"), exclusiveMaximum = try bound("exclusiveMaximum")
        if minimum == nil && exclusiveMinimum == nil && maximum == nil && exclusiveMaximum == nil {
            return integer ? JSONGrammar.integer : JSONGrammar.number
        }
        // The integers that meet the bounds, and the tighter real bound on each side.
        let lows = [minimum.map { Int($0.rounded(.up)) }, exclusiveMinimum.map { Int($0.rounded(.down)) + 1 }].compactMap { $0 }
        let highs = [maximum.map { Int($0.rounded(.down)) }, exclusiveMaximum.map { Int($0.rounded(.up)) - 1 }].compactMap { $0 }
        let low = lows.max(), high = highs.min()
        let lowerKey = exclusiveMinimum != nil && (minimum == nil || exclusiveMinimum! >= minimum!) ? "exclusiveMinimum" : "minimum"
        if integer {
            if let low, let high, low > high {
                throw APIError.invalid("No integer lies within the schema's bounds.", param: "\(path).\(lows.isEmpty ? "maximum" : lowerKey)")
            }
            return NumberRange.integers(low, high)
        }
        let floor = [minimum, exclusiveMinimum].compactMap { $0 }.max()
        let ceiling = [maximum, exclusiveMaximum].compactMap { $0 }.min()
        guard let expr = NumberRange.decimals(low: low, high: high, floor: floor, ceiling: ceiling) else {
            throw APIError.invalid("No number within the schema's bounds can be written with the supported construction (integers, and decimals whose integer part is strictly inside the bounds).", param: "\(path).\(floor == nil ? "maximum" : lowerKey)")
        }
        return expr
    }

    mutating func object(_ s: [String: JSONValue], path: String) throws -> GrammarExpr {
        var properties: [String: JSONValue] = [:]
        if let p = s["properties"] {
            guard case .object(let o) = p else { throw APIError.invalid("'properties' must be an object.", param: "\(path).properties") }
            properties = o
        }
        var required: [String] = []
        if let r = s["required"] {
            guard case .array(let items) = r else { throw APIError.invalid("'required' must be an array.", param: "\(path).required") }
            for item in items {
                guard case .string(let name) = item else { throw APIError.invalid("'required' entries must be strings.", param: "\(path).required") }
                if !required.contains(name) { required.append(name) }
            }
        }
        var extra: GrammarExpr?
        switch s["additionalProperties"] {
        case nil, .bool(false)?: extra = nil
        case .bool(true)?: extra = .rule("json-value")
        case let schema?: extra = try compile(schema, path: "\(path).additionalProperties")
        }
        // Required members first, in the order `required` lists them (pydantic's field order), then the optional
        // ones by name; each optional member may be left out.
        var members: [(expr: GrammarExpr, optional: Bool)] = []
        for name in required {
            let value: GrammarExpr
            if let p = properties[name] {
                value = try compile(p, path: "\(path).properties.\(name)")
            } else if let extra {
                value = extra
            } else {
                throw APIError.invalid("Required property '\(name)' is not in 'properties' and additional properties are not allowed.", param: "\(path).required")
            }
            members.append((member(name, value), false))
        }
        for name in properties.keys.sorted() where !required.contains(name) {
            members.append((member(name, try compile(properties[name]!, path: "\(path).properties.\(name)")), true))
        }
        if let extra {
            // Extra members take keys outside the declared ones only by convention: the model is told the schema.
            let pair = GrammarExpr.sequence([JSONGrammar.string(), JSONGrammar.ws, .text(":"), JSONGrammar.ws, extra, JSONGrammar.ws])
            members.append((.sequence([pair, .zeroOrMore(.sequence([.text(","), JSONGrammar.ws, pair]))]), true))
        }
        return .sequence([.text("{"), JSONGrammar.ws, membersList(members[...]), .text("}")])
    }

    func member(_ name: String, _ value: GrammarExpr) -> GrammarExpr {
        .sequence([.text(JSONGrammar.quoted(name)), JSONGrammar.ws, .text(":"), JSONGrammar.ws, value, JSONGrammar.ws])
    }

    /// Members with commas only between those present.
    func membersList(_ members: ArraySlice<(expr: GrammarExpr, optional: Bool)>) -> GrammarExpr {
        guard let first = members.first else { return .empty }
        let rest = members.dropFirst()
        let tail = GrammarExpr.sequence(rest.map { m in
            let item = GrammarExpr.sequence([.text(","), JSONGrammar.ws, m.expr])
            return m.optional ? .optional(item) : item
        })
        if !first.optional { return .sequence([first.expr, tail]) }
        // The first present member decides where the commas start.
        return .choice([.sequence([first.expr, tail]), membersList(rest)])
    }

    mutating func array(_ s: [String: JSONValue], path: String) throws -> GrammarExpr {
        let minItems = try integer(s, "minItems", path: path) ?? 0
        let maxItems = try integer(s, "maxItems", path: path)
        if let maxItems, maxItems < minItems { throw APIError.invalid("'maxItems' is below 'minItems'.", param: "\(path).maxItems") }
        var prefix: [GrammarExpr] = []
        if let p = s["prefixItems"] {
            guard case .array(let items) = p else { throw APIError.invalid("'prefixItems' must be an array.", param: "\(path).prefixItems") }
            prefix = try items.enumerated().map { try compile($0.element, path: "\(path).prefixItems[\($0.offset)]") }
        }
        var item: GrammarExpr? = .rule("json-value")
        if let i = s["items"] {
            if case .bool(false) = i { item = nil } else { item = try compile(i, path: "\(path).items") }
        } else if !prefix.isEmpty {
            item = nil
        }
        // Elements: the prefix ones in order, then `items` ones; between minItems and maxItems in all.
        var elements: [(GrammarExpr, optional: Bool)] = []
        let cap = maxItems ?? Int.max
        for (i, p) in prefix.enumerated() where i < cap { elements.append((p, i >= minItems)) }
        let element = { (e: GrammarExpr) in GrammarExpr.sequence([e, JSONGrammar.ws]) }
        var body: GrammarExpr = .empty
        let fixed = elements.count
        if let item, cap > fixed {
            let needed = Swift.max(0, minItems - fixed)
            let more = maxItems.map { $0 - fixed - needed }
            let repeatItem = GrammarExpr.sequence([.text(","), JSONGrammar.ws, element(item)])
            if fixed == 0 {
                let rest = GrammarExpr.repetition(repeatItem, min: Swift.max(0, needed - 1), max: maxItems.map { $0 - 1 })
                let list = GrammarExpr.sequence([element(item), rest])
                body = needed > 0 ? list : .optional(list)
            } else {
                body = .repetition(repeatItem, min: needed, max: more.map { $0 + needed })
            }
        } else if minItems > fixed {
            throw APIError.invalid("'minItems' cannot be met: no further items are allowed.", param: "\(path).minItems")
        }
        var parts: [GrammarExpr] = []
        for (i, e) in elements.enumerated() {
            let piece = GrammarExpr.sequence(i == 0 ? [element(e.0)] : [.text(","), JSONGrammar.ws, element(e.0)])
            parts.append(e.optional ? .optional(piece) : piece)
        }
        parts.append(body)
        return .sequence([.text("["), JSONGrammar.ws] + parts + [.text("]")])
    }

    mutating func reference(_ ref: JSONValue, path: String) throws -> GrammarExpr {
        let (r, target) = try resolve(ref, path: path)
        if let name = refRules[r] { return .rule(name) }
        let name = "ref-\(refRules.count)"
        refRules[r] = name
        // Registered before compiling, so a recursive schema refers back to its own rule.
        rules[name] = .empty
        rules[name] = try compile(target, path: base + (r == "#" ? "" : "." + r.dropFirst(2).replacingOccurrences(of: "/", with: ".")))
        return .rule(name)
    }

    /// A local reference's text and the schema it points at.
    func resolve(_ ref: JSONValue, path: String) throws -> (String, JSONValue) {
        guard case .string(let r) = ref else { throw APIError.invalid("'$ref' must be a string.", param: path) }
        guard r == "#" || r.hasPrefix("#/") else {
            throw APIError.invalid("Only local references ('#/...') are supported, got '\(r)'.", param: path)
        }
        var target = root
        for raw in r.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) where r != "#" {
            let key = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch target {
            case .object(let o) where o[key] != nil: target = o[key]!
            case .array(let a) where Int(key).map({ a.indices.contains($0) }) == true: target = a[Int(key)!]
            default: throw APIError.invalid("'$ref' '\(r)' does not resolve.", param: path)
            }
        }
        return (r, target)
    }
}
