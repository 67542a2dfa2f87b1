// `response_format` as requests send it, and the constraint each form compiles to (cached by schema text).
import Inference
import Locks

public enum ResponseFormat: Sendable, Equatable {
    case text
    case jsonObject
    case jsonSchema(name: String, schema: JSONValue, strict: Bool)

    /// The `jobs.constraint` value.
    public var kind: String {
        switch self {
        case .text: "none"
        case .jsonObject: "json_object"
        case .jsonSchema: "json_schema"
        }
    }

    static func decode(_ value: JSONValue, param: String = "response_format") throws -> ResponseFormat {
        guard case .object(let object) = value else {
            throw APIError.invalid("'\(param)' must be an object, got \(value.typeName).", param: param)
        }
        let fields = FieldReader(object: object)
        switch try fields.string("type") {
        case "text": return .text
        case "json_object": return .jsonObject
        case "json_schema":
            guard case .object(let spec)? = fields.value("json_schema") else {
                throw APIError.invalid("'\(param).json_schema' is required and must be an object.", param: "\(param).json_schema")
            }
            let f = FieldReader(object: spec)
            let name = (try? f.string("name")) ?? nil
            guard let schema = f.value("schema") else {
                throw APIError.invalid("'\(param).json_schema.schema' is required.", param: "\(param).json_schema.schema")
            }
            return .jsonSchema(name: name ?? "response", schema: schema, strict: (try? f.bool("strict")) ?? nil ?? false)
        case let other:
            throw APIError.invalid("'\(param).type' must be 'text', 'json_object' or 'json_schema', got '\(other ?? "nothing")'.", param: "\(param).type")
        }
    }
}

/// Compiles response formats to grammar maskers over one vocabulary, keeping recent ones by schema.
public final class ConstraintCompiler: Sendable {
    public let vocabulary: TokenVocabulary
    /// Call markers the tokenizer keeps as one special token (absent from the vocabulary's bytes), by marker text:
    /// an `auto` reply's lazy grammar also switches on at that token.
    public let markerTokens: [String: Int32]
    private let cache = Locked<[String: GrammarMasker]>([:])
    /// Hears the seconds each compile took (a cache hit is no compile): the compile-time histogram.
    private let onCompile: @Sendable (Double) -> Void

    public init(vocabulary: TokenVocabulary, markerTokens: [String: Int32] = [:],
                onCompile: @escaping @Sendable (Double) -> Void = { _ in }) {
        self.vocabulary = vocabulary
        self.markerTokens = markerTokens
        self.onCompile = onCompile
    }

    /// Reports a compile that began at `start`.
    func reportCompile(since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        onCompile(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }

    /// The masker for a format (nil for `text`), or a 400 naming what cannot be compiled.
    public func masker(for format: ResponseFormat, param: String = "response_format") throws -> GrammarMasker? {
        let key: String
        switch format {
        case .text: return nil
        case .jsonObject: key = "json_object"
        case .jsonSchema(_, let schema, _): key = JSONGrammar.literal(schema)
        }
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let start = ContinuousClock.now
        let grammar: Grammar
        if case .jsonSchema(_, let schema, _) = format {
            grammar = try JSONSchemaCompiler.grammar(for: schema, param: "\(param).json_schema.schema")
        } else {
            grammar = JSONGrammar.anyObject
        }
        let compiled: CompiledGrammar
        do {
            compiled = try CompiledGrammar(grammar)
        } catch {
            throw APIError.invalid("The schema cannot be compiled: \(error.message).", param: "\(param).json_schema.schema")
        }
        let masker = GrammarMasker(grammar: compiled, vocabulary: vocabulary)
        reportCompile(since: start)
        cache.withLock { c in
            if c.count >= 64 { c.removeAll() }
            c[key] = masker
        }
        return masker
    }
}
