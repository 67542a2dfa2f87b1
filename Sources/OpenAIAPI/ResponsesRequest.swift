// A validated /v1/responses request: the input items (messages, function calls and their outputs) become chat
// messages, tools and text.format become the chat endpoint's, and what Valet cannot honour (built-in tools,
// server-side conversation state) is refused by name rather than ignored.
import Scheduling
import Inference

public struct ResponsesRequest: Sendable {
    public var common = CommonParameters()
    /// `instructions` first (as a system message), then the input items in order.
    public var messages: [ChatMessageInput] = []
    /// Echoed in the response object as sent.
    public var instructions: String?
    public var maxOutputTokens: Int?
    public var tools = ChatTools()
    /// The request's `tools`, `tool_choice` and `text.format` as sent, echoed in the response object.
    public var echo = Echo()

    public struct Echo: Sendable {
        public var tools: [JSONValue] = []
        public var toolChoice: JSONValue = .string("auto")
        public var format: JSONValue = .object(["type": .string("text")])
    }

    public static func decode(_ body: [UInt8], limits: RequestDecoder.Limits) throws -> ResponsesRequest {
        let fields = FieldReader(object: try RequestDecoder.object(body))
        var r = ResponsesRequest()
        r.common.model = try fields.string("model") ?? ""
        try rejectUnsupported(fields)
        r.tools = try ResponsesTools.decode(fields)
        r.common.responseFormat = try ResponsesTools.format(fields.value("text"))
        if case .array(let tools)? = fields.value("tools") { r.echo.tools = tools }
        if let choice = fields.value("tool_choice") { r.echo.toolChoice = choice }
        if case .object(let text)? = fields.value("text"), let format = text["format"], format != .null { r.echo.format = format }

        r.instructions = try fields.string("instructions")
        if let instructions = r.instructions { r.messages.append(ChatMessageInput(role: "system", content: instructions)) }
        guard let input = fields.value("input") else { throw APIError.invalid("'input' is required.", param: "input") }
        switch input {
        case .string(let text):
            r.messages.append(ChatMessageInput(role: "user", content: text))
        case .array(let items) where !items.isEmpty:
            for (i, item) in items.enumerated() { try append(item, index: i, to: &r.messages) }
        case .array:
            throw APIError.invalid("'input' must not be an empty array.", param: "input")
        default:
            throw APIError.invalid("'input' must be a string or an array of input items, got \(input.typeName).", param: "input")
        }

        r.maxOutputTokens = try fields.integer("max_output_tokens", 1...Int(Int32.max))
        r.common.maxTokens = r.maxOutputTokens
        r.common.sampling = limits.samplingDefaults.parameters
        if let t = try fields.number("temperature", 0...2) { r.common.sampling.temperature = Float(t) }
        if let v = try fields.number("top_p", 0...1) {
            guard v > 0 else { throw APIError.invalid("'top_p' must be greater than 0.", param: "top_p") }
            r.common.sampling.topP = Float(v)
        }
        r.common.stream = try fields.bool("stream") ?? false
        _ = try fields.string("user")
        if let name = try fields.string("priority") {
            guard let priority = Priority(name: name) else {
                throw APIError.invalid("'priority' must be one of low, normal, high, critical; got '\(name)'.", param: "priority")
            }
            r.common.priority = priority
        }
        if let timeout = try fields.number("queue_timeout", 0...86_400) {
            guard timeout > 0 else { throw APIError.invalid("'queue_timeout' must be greater than 0 seconds.", param: "queue_timeout") }
            r.common.queueTimeout = timeout
        }
        return r
    }

    /// One input item: a message, a `function_call` the model made earlier (consecutive calls share one assistant
    /// turn, as chat's `tool_calls` do), or a `function_call_output` (a tool turn).
    private static func append(_ value: JSONValue, index: Int, to messages: inout [ChatMessageInput]) throws {
        let param = "input[\(index)]"
        guard case .object(let object) = value else {
            throw APIError.invalid("'\(param)' must be an input item object, got \(value.typeName).", param: param)
        }
        let fields = FieldReader(object: object)
        switch try fields.string("type") ?? "message" {
        case "message":
            messages.append(try message(fields, param: param))
        case "function_call":
            let callID = try required(fields, "call_id", param)
            let name = try required(fields, "name", param)
            let arguments = try required(fields, "arguments", param)
            let call = ChatToolCall(id: callID, name: name, arguments: arguments)
            if let last = messages.indices.last, messages[last].role == "assistant", !messages[last].toolCalls.isEmpty {
                messages[last].toolCalls.append(call)
            } else {
                messages.append(ChatMessageInput(role: "assistant", content: "", toolCalls: [call]))
            }
        case "function_call_output":
            let callID = try required(fields, "call_id", param)
            let output: String
            switch fields.value("output") {
            case .string(let s)?: output = s
            case nil: throw APIError.invalid("'\(param).output' is required.", param: "\(param).output")
            case let other?: output = other.text
            }
            messages.append(ChatMessageInput(role: "tool", content: output, toolCallID: callID))
        case let type:
            throw APIError.unsupported("'\(param).type' is '\(type)': only message, function_call and function_call_output items are supported.",
                                       param: "\(param).type")
        }
    }

    private static func required(_ fields: FieldReader, _ key: String, _ param: String) throws -> String {
        let value: String?
        do {
            value = try fields.string(key)
        } catch let error as APIError {
            throw APIError.invalid(error.message.replacingOccurrences(of: "'\(key)'", with: "'\(param).\(key)'"),
                                   param: "\(param).\(key)")
        }
        guard let value else { throw APIError.invalid("'\(param).\(key)' is required.", param: "\(param).\(key)") }
        return value
    }

    /// A message item (`type` "message" or just a `role`) whose content is a string or text parts.
    private static func message(_ fields: FieldReader, param: String) throws -> ChatMessageInput {
        guard let role = try fields.string("role") else {
            throw APIError.invalid("'\(param).role' is required.", param: "\(param).role")
        }
        let mapped: String
        switch role {
        case "system", "developer": mapped = "system"
        case "user", "assistant": mapped = role
        default:
            throw APIError.invalid("'\(param).role' must be one of user, assistant, system, developer; got '\(role)'.",
                                   param: "\(param).role")
        }
        switch fields.value("content") {
        case .string(let text)?:
            return ChatMessageInput(role: mapped, content: text)
        case .array(let parts)?:
            let texts = try parts.enumerated().map { j, part -> String in
                let partParam = "\(param).content[\(j)]"
                guard case .object(let partObject) = part else {
                    throw APIError.invalid("'\(partParam)' must be an object, got \(part.typeName).", param: partParam)
                }
                let partFields = FieldReader(object: partObject)
                let partType = try partFields.string("type")
                // An assistant turn carried back from an earlier response holds output_text parts.
                guard partType == "input_text" || partType == "output_text" else {
                    throw APIError.unsupported("'\(partParam).type' is '\(partType ?? "missing")': only input_text (and output_text in assistant turns) is supported.",
                                               param: "\(partParam).type")
                }
                guard let text = try partFields.string("text") else {
                    throw APIError.invalid("'\(partParam).text' is required.", param: "\(partParam).text")
                }
                return text
            }
            return ChatMessageInput(role: mapped, content: texts.joined(separator: "\n"))
        case nil:
            throw APIError.invalid("'\(param).content' is required.", param: "\(param).content")
        case let other?:
            throw APIError.invalid("'\(param).content' must be a string or an array of content parts, got \(other.typeName).",
                                   param: "\(param).content")
        }
    }

    private static func rejectUnsupported(_ fields: FieldReader) throws {
        if let store = try fields.bool("store"), store {
            throw APIError.unsupported("'store' must be false: Valet keeps no conversation state, so a response cannot be stored or retrieved later.",
                                       param: "store")
        }
        for key in ["previous_response_id", "conversation"] where fields.value(key) != nil {
            throw APIError.unsupported("'\(key)' is not supported: Valet keeps no conversation state; send the earlier turns in 'input' instead.",
                                       param: key)
        }
        if let background = try fields.bool("background"), background {
            throw APIError.unsupported("'background' is not supported: Valet keeps no response state to poll.", param: "background")
        }
        if let reasoning = fields.value("reasoning") {
            guard case .object(let object) = reasoning else {
                throw APIError.invalid("'reasoning' must be an object, got \(reasoning.typeName).", param: "reasoning")
            }
            if FieldReader(object: object).value("effort") != nil {
                throw APIError.unsupported("'reasoning.effort' is not supported with this model: it is not a reasoning model.",
                                           param: "reasoning.effort")
            }
        }
        if let top = try fields.integer("top_logprobs", 0...20), top > 0 {
            throw APIError.unsupported("'top_logprobs' is not supported on /v1/responses; use /v1/chat/completions.", param: "top_logprobs")
        }
    }
}
