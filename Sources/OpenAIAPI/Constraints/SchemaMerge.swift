// `allOf` of object schemas (and `$ref` beside other keywords) merged into one object schema that allows exactly
// what all of them allow together, so the compiler writes one member list. Anything else cannot be merged: a 400.

extension JSONSchemaCompiler {
    /// Keywords an object schema may carry into a merge.
    static let mergeable: Set<String> = ["type", "properties", "required", "additionalProperties", "allOf", "$ref"]

    /// One object schema equivalent to all of `schemas` at once. Properties are the union; a property any part
    /// forbids (its `additionalProperties: false` without it) is left out, which is an error if it is required;
    /// where several parts constrain one property, their schemas must be equal or merge in turn; `required` is the
    /// union; `additionalProperties` for undeclared names is the strictest (false over a schema over true).
    func mergedObject(_ schemas: [JSONValue], param: String) throws -> [String: JSONValue] {
        var parts: [[String: JSONValue]] = []
        for schema in schemas { try flatten(schema, into: &parts, param: param, depth: 0) }

        var names: [String] = []
        var required: [String] = []
        for part in parts {
            guard case .object(let props) = part["properties"] ?? .object([:]) else {
                throw APIError.invalid("'properties' must be an object.", param: param)
            }
            for name in props.keys.sorted() where !names.contains(name) { names.append(name) }
            if let r = part["required"] {
                guard case .array(let items) = r else { throw APIError.invalid("'required' must be an array.", param: param) }
                for item in items {
                    guard case .string(let name) = item else { throw APIError.invalid("'required' entries must be strings.", param: param) }
                    if !required.contains(name) { required.append(name) }
                }
            }
        }
        var properties: [String: JSONValue] = [:]
        for name in names {
            var constraints: [JSONValue] = []
            var forbidden = false
            for part in parts {
                if case .object(let props)? = part["properties"], let p = props[name] {
                    constraints.append(p)
                    continue
                }
                switch part["additionalProperties"] {
                case .bool(false)?: forbidden = true
                case nil, .bool(true)?: break
                case let schema?: constraints.append(schema)
                }
            }
            if forbidden {
                if required.contains(name) {
                    throw APIError.invalid("'allOf' cannot be met: '\(name)' is required by one part and forbidden by another's 'additionalProperties: false'.", param: param)
                }
                continue
            }
            properties[name] = Self.conjunction(constraints)
        }
        for name in required where properties[name] == nil {
            // Required but declared nowhere: whatever undeclared names allow.
            var constraints: [JSONValue] = []
            for part in parts {
                switch part["additionalProperties"] {
                case .bool(false)?:
                    throw APIError.invalid("'allOf' cannot be met: '\(name)' is required but not allowed.", param: param)
                case nil, .bool(true)?: break
                case let schema?: constraints.append(schema)
                }
            }
            properties[name] = Self.conjunction(constraints)
        }
        var merged: [String: JSONValue] = [
            "type": .string("object"), "properties": .object(properties), "required": .array(required.map { .string($0) }),
        ]
        var extra: [JSONValue] = []
        for part in parts {
            switch part["additionalProperties"] {
            case .bool(false)?: merged["additionalProperties"] = .bool(false)
            case nil, .bool(true)?: break
            case let schema?: extra.append(schema)
            }
        }
        if merged["additionalProperties"] == nil && !extra.isEmpty { merged["additionalProperties"] = Self.conjunction(extra) }
        return merged
    }

    /// One schema for all of `schemas`: any value if none, the schema if they are all equal, else their `allOf`
    /// (which compiles only if they merge in turn).
    private static func conjunction(_ all: [JSONValue]) -> JSONValue {
        // Schemas that allow anything (true, {}, annotations only) add nothing.
        let schemas = all.filter { s in
            switch s {
            case .bool(true): false
            case .object(let o): !o.keys.allSatisfy { annotations.contains($0) }
            default: true
            }
        }
        guard let first = schemas.first else { return .bool(true) }
        if schemas.allSatisfy({ $0 == first }) { return first }
        return .object(["allOf": .array(schemas)])
    }

    /// The object schemas `schema` stands for, with `$ref`s followed and nested `allOf`s opened.
    private func flatten(_ schema: JSONValue, into parts: inout [[String: JSONValue]], param: String, depth: Int) throws {
        guard depth < 32 else { throw APIError.invalid("'allOf' nests or refers back too deeply to merge.", param: param) }
        let s: [String: JSONValue]
        switch schema {
        case .bool(true): return
        case .object(let o): s = o
        default: throw APIError.invalid("'allOf' can only combine object schemas.", param: param)
        }
        for key in s.keys.sorted() where !Self.mergeable.contains(key) && !Self.annotations.contains(key) {
            throw APIError.invalid("'allOf' can only combine object schemas: '\(key)' cannot be merged.", param: param)
        }
        if let t = s["type"], t != .string("object") {
            throw APIError.invalid("'allOf' can only combine object schemas, not type \(JSONGrammar.literal(t)).", param: param)
        }
        if let ref = s["$ref"] {
            try flatten(try resolve(ref, path: param).1, into: &parts, param: param, depth: depth + 1)
        }
        if let all = s["allOf"] {
            guard case .array(let items) = all else { throw APIError.invalid("'allOf' must be an array of schemas.", param: param) }
            for item in items { try flatten(item, into: &parts, param: param, depth: depth + 1) }
        }
        parts.append(s.filter { $0.key != "$ref" && $0.key != "allOf" })
    }
}
