// A chat request's `tools`, `tool_choice` and `parallel_tool_calls`, decoded and checked so each error names its field.
import Inference

/// One function the client offers (`{"type": "function", "function": {name, description, parameters}}`).
public struct ToolSpec: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// The JSON Schema of the arguments; an object schema with no properties when the client sent none.
    public var parameters: JSONValue

    public var definition: ToolDefinition {
        ToolDefinition(name: name, description: description, parameters: parameters.text)
    }
}

public enum ToolChoice: Sendable, Equatable {
    /// The model must not call: the tools are left out of the prompt.
    case none
    /// Text or calls, as the model decides.
    case auto
    /// At least one call, of any of the tools.
    case required
    /// One call of this tool.
    case function(String)
}

public struct ChatTools: Sendable, Equatable {
    public var tools: [ToolSpec] = []
    public var choice: ToolChoice = .none
    /// With `required` or `auto`, whether the reply may hold more than one call.
    public var parallel = true

    /// Whether the reply is read for calls at all.
    public var active: Bool { !tools.isEmpty && choice != .none }

    /// The tools a call may name under the choice.
    public var callable: [ToolSpec] {
        switch choice {
        case .none: []
        case .auto, .required: tools
        case .function(let name): tools.filter { $0.name == name }
        }
    }

    static let defaultParameters = JSONValue.object(["type": .string("object"), "properties": .object([:])])

    static func decode(_ fields: FieldReader) throws -> ChatTools {
        var result = ChatTools()
        if let value = fields.value("tools") {
            guard case .array(let items) = value else {
                throw APIError.invalid("'tools' must be an array, got \(value.typeName).", param: "tools")
            }
            for (i, item) in items.enumerated() {
                let tool = try spec(item, param: "tools[\(i)]")
                if result.tools.contains(where: { $0.name == tool.name }) {
                    throw APIError.invalid("'tools[\(i)].function.name': the name '\(tool.name)' is given twice.",
                                           param: "tools[\(i)].function.name")
                }
                result.tools.append(tool)
            }
        }
        result.choice = result.tools.isEmpty ? .none : .auto
        if let value = fields.value("tool_choice") {
            result.choice = try choice(value, tools: result.tools)
        }
        if let parallel = try fields.bool("parallel_tool_calls") { result.parallel = parallel }
        return result
    }

    /// Names as OpenAI allows them: letters, digits, underscores and dashes, at most 64.
    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }
    }

    private static func spec(_ value: JSONValue, param: String) throws -> ToolSpec {
        guard case .object(let object) = value else {
            throw APIError.invalid("'\(param)' must be an object, got \(value.typeName).", param: param)
        }
        let fields = FieldReader(object: object)
        let type = try named(param) { try fields.string("type") }
        guard type == "function" else {
            throw APIError.invalid("'\(param).type' must be 'function', got \(type.map { "'\($0)'" } ?? "nothing").",
                                   param: "\(param).type")
        }
        let functionParam = "\(param).function"
        guard let functionValue = fields.value("function") else {
            throw APIError.invalid("'\(functionParam)' is required.", param: functionParam)
        }
        guard case .object(let functionObject) = functionValue else {
            throw APIError.invalid("'\(functionParam)' must be an object, got \(functionValue.typeName).", param: functionParam)
        }
        let function = FieldReader(object: functionObject)
        guard let name = try named(functionParam, { try function.string("name") }) else {
            throw APIError.invalid("'\(functionParam).name' is required.", param: "\(functionParam).name")
        }
        guard validName(name) else {
            throw APIError.invalid("'\(functionParam).name' must be 1 to 64 letters, digits, underscores or dashes; got '\(name)'.",
                                   param: "\(functionParam).name")
        }
        let description = try named(functionParam) { try function.string("description") }
        var parameters = defaultParameters
        if let value = function.value("parameters") {
            try compileParameters(value, param: "\(functionParam).parameters")
            parameters = value
        }
        _ = try named(functionParam) { try function.bool("strict") }
        return ToolSpec(name: name, description: description, parameters: parameters)
    }

    /// A tool's schema is compiled whatever `tool_choice` is, so an unsupported keyword or a bad `$ref` is a 400
    /// naming it even when no call is forced; it must also describe an object, as OpenAI requires.
    static func compileParameters(_ value: JSONValue, param: String) throws {
        guard case .object(let schema) = value else {
            throw APIError.invalid("'\(param)' must be a JSON Schema object, got \(value.typeName).", param: param)
        }
        if let type = schema["type"], type != .string("object") {
            throw APIError.invalid("'\(param).type' must be 'object': a function's arguments are a JSON object.",
                                   param: "\(param).type")
        }
        _ = try JSONSchemaCompiler.grammar(for: value, param: param)
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
            let type = try named("tool_choice") { try fields.string("type") }
            guard type == "function" else {
                throw APIError.invalid("'tool_choice.type' must be 'function', got \(type.map { "'\($0)'" } ?? "nothing").",
                                       param: "tool_choice.type")
            }
            guard case .object(let function)? = fields.value("function"),
                  case .string(let name)? = function["name"] else {
                throw APIError.invalid("'tool_choice.function.name' is required.", param: "tool_choice.function.name")
            }
            guard tools.contains(where: { $0.name == name }) else {
                let known = tools.isEmpty ? "no tools were given" : "the tools are " + tools.map { "'\($0.name)'" }.joined(separator: ", ")
                throw APIError.invalid("'tool_choice' names the function '\(name)', but \(known).", param: "tool_choice.function.name")
            }
            return .function(name)
        default:
            throw APIError.invalid("'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": …}}.",
                                   param: "tool_choice")
        }
    }

    /// A nested field's type error, with its full path as the param.
    private static func named<T>(_ prefix: String, _ read: () throws -> T) throws -> T {
        do {
            return try read()
        } catch let error as APIError {
            let key = error.param ?? ""
            throw APIError.invalid(error.message.replacingOccurrences(of: "'\(key)'", with: "'\(prefix).\(key)'"),
                                   param: "\(prefix).\(key)")
        }
    }
}
