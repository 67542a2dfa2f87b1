// The Responses API's `tools`, `tool_choice`, `parallel_tool_calls` and `text.format`, in its flat shapes, decoded
// into the chat endpoint's `ChatTools` and `ResponseFormat` so both share one constraint and template path.
import Inference

enum ResponsesTools {
    /// `tools: [{"type": "function", "name", "description", "parameters", "strict"}]` and the choice among them.
    static func decode(_ fields: FieldReader) throws -> ChatTools {
        var result = ChatTools()
        if let value = fields.value("tools") {
            guard case .array(let items) = value else {
                throw APIError.invalid("'tools' must be an array, got \(value.typeName).", param: "tools")
            }
            for (i, item) in items.enumerated() {
                let tool = try spec(item, param: "tools[\(i)]")
                if result.tools.contains(where: { $0.name == tool.name }) {
                    throw APIError.invalid("'tools[\(i)].name': the name '\(tool.name)' is given twice.", param: "tools[\(i)].name")
                }
                result.tools.append(tool)
            }
        }
        result.choice = result.tools.isEmpty ? .none : .auto
        if let value = fields.value("tool_choice") { result.choice = try choice(value, tools: result.tools) }
        if let parallel = try fields.bool("parallel_tool_calls") { result.parallel = parallel }
        return result
    }

    private static func spec(_ value: JSONValue, param: String) throws -> ToolSpec {
        guard case .object(let object) = value else {
            throw APIError.invalid("'\(param)' must be an object, got \(value.typeName).", param: param)
        }
        let fields = FieldReader(object: object)
        let type = try renamed(param) { try fields.string("type") }
        guard type == "function" else {
            throw APIError.unsupported("'\(param).type' is \(type.map { "'\($0)'" } ?? "missing"): only 'function' tools are supported (Valet runs no built-in tools such as web_search or file_search).",
                                       param: "\(param).type")
        }
        guard let name = try renamed(param, { try fields.string("name") }) else {
            throw APIError.invalid("'\(param).name' is required.", param: "\(param).name")
        }
        guard ChatTools.validName(name) else {
            throw APIError.invalid("'\(param).name' must be 1 to 64 letters, digits, underscores or dashes; got '\(name)'.",
                                   param: "\(param).name")
        }
        let description = try renamed(param) { try fields.string("description") }
        var parameters = ChatTools.defaultParameters
        if let value = fields.value("parameters") {
            try ChatTools.compileParameters(value, param: "\(param).parameters")
            parameters = value
        }
        _ = try renamed(param) { try fields.bool("strict") }
        return ToolSpec(name: name, description: description, parameters: parameters)
    }

    private static func choice(_ value: JSONValue, tools: [ToolSpec]) throws -> ToolChoice {
        switch value {
        case .string("none"): return .none
        case .string(let s) where s == "auto" || s == "required":
            guard !tools.isEmpty else {
                throw APIError.invalid("'tool_choice' is '\(s)' but no 'tools' were given.", param: "tool_choice")
            }
            return s == "auto" ? .auto : .required
        case .object(let object):
            let fields = FieldReader(object: object)
            let type = try renamed("tool_choice") { try fields.string("type") }
            guard type == "function" else {
                throw APIError.unsupported("'tool_choice.type' must be 'function', got \(type.map { "'\($0)'" } ?? "nothing").",
                                           param: "tool_choice.type")
            }
            guard let name = try renamed("tool_choice", { try fields.string("name") }) else {
                throw APIError.invalid("'tool_choice.name' is required.", param: "tool_choice.name")
            }
            guard tools.contains(where: { $0.name == name }) else {
                let known = tools.isEmpty ? "no tools were given" : "the tools are " + tools.map { "'\($0.name)'" }.joined(separator: ", ")
                throw APIError.invalid("'tool_choice' names the function '\(name)', but \(known).", param: "tool_choice.name")
            }
            return .function(name)
        default:
            throw APIError.invalid("'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": …}.",
                                   param: "tool_choice")
        }
    }

    /// `text.format`: `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "name", "schema",
    /// "strict"}`; the schema is compiled here so its errors name `text.format.schema…`.
    static func format(_ text: JSONValue?) throws -> ResponseFormat {
        guard let text else { return .text }
        guard case .object(let object) = text else {
            throw APIError.invalid("'text' must be an object, got \(text.typeName).", param: "text")
        }
        guard let format = FieldReader(object: object).value("format") else { return .text }
        guard case .object(let formatObject) = format else {
            throw APIError.invalid("'text.format' must be an object, got \(format.typeName).", param: "text.format")
        }
        let fields = FieldReader(object: formatObject)
        switch try renamed("text.format", { try fields.string("type") }) {
        case "text": return .text
        case "json_object": return .jsonObject
        case "json_schema":
            let name = try renamed("text.format") { try fields.string("name") }
            guard let schema = fields.value("schema") else {
                throw APIError.invalid("'text.format.schema' is required.", param: "text.format.schema")
            }
            let strict = try renamed("text.format") { try fields.bool("strict") } ?? false
            _ = try JSONSchemaCompiler.grammar(for: schema, param: "text.format.schema")
            return .jsonSchema(name: name ?? "response", schema: schema, strict: strict)
        case let other:
            throw APIError.invalid("'text.format.type' must be 'text', 'json_object' or 'json_schema', got \(other.map { "'\($0)'" } ?? "nothing").",
                                   param: "text.format.type")
        }
    }

    /// A nested field's type error, with its full path as the param.
    private static func renamed<T>(_ prefix: String, _ read: () throws -> T) throws -> T {
        do {
            return try read()
        } catch let error as APIError {
            let key = error.param ?? ""
            throw APIError.invalid(error.message.replacingOccurrences(of: "'\(key)'", with: "'\(prefix).\(key)'"),
                                   param: "\(prefix).\(key)")
        }
    }
}
