// Validated requests for /v1/chat/completions and /v1/completions, decoded from JSON with OpenAI's rules.
import Scheduling
import Foundation
import Inference

/// Made only by the decoder (hence no public init); the backend reads it.
public struct ChatMessageInput: Sendable, Equatable {
    /// system, user, assistant or tool (`developer` arrives as system).
    public var role: String
    /// Empty for an assistant turn that only called tools (`content: null`).
    public var content: String
    /// An assistant turn's calls, as the client sends them back.
    public var toolCalls: [ChatToolCall] = []
    /// A tool turn: the call it answers.
    public var toolCallID: String?
}

/// Fields both endpoints share.
public struct CommonParameters: Sendable {
    public var model: String = ""
    /// nil: the endpoint's default, capped by the context left after the prompt.
    public var maxTokens: Int?
    public var sampling = SamplingParameters()
    public var stop: [String] = []
    public var n = 1
    public var stream = false
    public var includeUsage = false
    /// nil: the X-Valet-Priority header, then normal.
    public var priority: Priority?
    public var queueTimeout: Double?
    /// vLLM's `cache_salt`: only requests with the same salt share prefix-cache blocks.
    public var cacheSalt: String?
    /// `response_format`; nil or `.text` leaves decoding unconstrained.
    public var responseFormat: ResponseFormat?
}

public struct ChatCompletionRequest: Sendable {
    public var common = CommonParameters()
    public var messages: [ChatMessageInput] = []
    public var logprobs = false
    public var topLogprobs: Int?
    public var tools = ChatTools()
}

public struct CompletionRequest: Sendable {
    public var common = CommonParameters()
    public var prompts: [PromptInput] = []
    /// Top-N alternatives per token (0...5); nil means no logprobs.
    public var logprobs: Int?
    public var echo = false
}

/// Reads one field at a time so every error names the field and what was wrong with it.
struct FieldReader {
    let object: [String: JSONValue]

    /// JSON null counts as absent, as OpenAI's API treats it.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else { throw APIError.invalid("'\(key)' must be a string, got \(value.typeName).", param: key) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else { throw APIError.invalid("'\(key)' must be a boolean, got \(value.typeName).", param: key) }
        return b
    }

    func number(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard case .number(let x) = value else { throw APIError.invalid("'\(key)' must be a number, got \(value.typeName).", param: key) }
        guard range.contains(x) else {
            throw APIError.invalid("'\(key)' must be between \(FieldReader.format(range.lowerBound)) and \(FieldReader.format(range.upperBound)), got \(FieldReader.format(x)).", param: key)
        }
        return x
    }

    func integer(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .number(let x) = value, x.rounded() == x, abs(x) < 9.0e18 else {
            throw APIError.invalid("'\(key)' must be an integer, got \(value.typeName == "a number" ? "a fraction" : value.typeName).", param: key)
        }
        let i = Int(x)
        guard range.contains(i) else {
            throw APIError.invalid("'\(key)' must be between \(range.lowerBound) and \(range.upperBound), got \(i).", param: key)
        }
        return i
    }

    static func format(_ x: Double) -> String {
        x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}

/// Decoding and validation shared by both endpoints.
public enum RequestDecoder {
    /// What validation needs to know about the served model.
    public struct Limits: Sendable {
        public var vocabularySize: Int
        /// What an omitted sampling field becomes.
        public var samplingDefaults: SamplingDefaults
        public init(vocabularySize: Int, samplingDefaults: SamplingDefaults = .llamaCpp) {
            self.vocabularySize = vocabularySize
            self.samplingDefaults = samplingDefaults
        }
    }

    static func object(_ body: [UInt8]) throws -> [String: JSONValue] {
        guard !body.isEmpty else { throw APIError.invalid("The request body is empty; send a JSON object.") }
        guard let value = JSONValue.parse(body) else {
            throw APIError.invalid("The request body is not valid JSON.")
        }
        guard case .object(let object) = value else {
            throw APIError.invalid("The request body must be a JSON object, got \(value.typeName).")
        }
        return object
    }

    /// What both endpoints read first: the object, the shared parameters, the unsupported ones refused, and
    /// the endpoint's own required field.
    private static func fields(_ body: [UInt8], limits: Limits, maxTokensFloor: Int,
                               required: String) throws -> (FieldReader, CommonParameters, JSONValue) {
        let fields = FieldReader(object: try object(body))
        var common = try common(fields, limits: limits, maxTokensFloor: maxTokensFloor)
        try rejectUnsupported(fields, chat: required == "messages")
        if let format = fields.value("response_format") { common.responseFormat = try ResponseFormat.decode(format) }
        guard let value = fields.value(required) else {
            throw APIError.invalid("'\(required)' is required.", param: required)
        }
        return (fields, common, value)
    }

    public static func decodeChat(_ body: [UInt8], limits: Limits) throws -> ChatCompletionRequest {
        let (fields, common, messagesValue) = try fields(body, limits: limits, maxTokensFloor: 1, required: "messages")
        var request = ChatCompletionRequest()
        request.common = common
        guard case .array(let items) = messagesValue else {
            throw APIError.invalid("'messages' must be an array, got \(messagesValue.typeName).", param: "messages")
        }
        guard !items.isEmpty else { throw APIError.invalid("'messages' must contain at least one message.", param: "messages") }
        request.messages = try items.enumerated().map { try message($0.element, index: $0.offset) }
        request.tools = try ChatTools.decode(fields)

        if let logprobs = try fields.bool("logprobs") { request.logprobs = logprobs }
        request.topLogprobs = try fields.integer("top_logprobs", 0...20)
        if request.topLogprobs != nil && !request.logprobs {
            throw APIError.invalid("'top_logprobs' requires 'logprobs' to be true.", param: "top_logprobs")
        }
        return request
    }

    public static func decodeCompletion(_ body: [UInt8], limits: Limits) throws -> CompletionRequest {
        let (fields, common, promptValue) = try fields(body, limits: limits, maxTokensFloor: 0, required: "prompt")
        var request = CompletionRequest()
        request.common = common
        request.prompts = try PromptInput.list(promptValue, field: "prompt", vocabularySize: limits.vocabularySize)
        if request.prompts.count * request.common.n > 64 {
            throw APIError.invalid("At most 64 completions per request (prompts × n).", param: "n")
        }
        request.logprobs = try fields.integer("logprobs", 0...5)
        request.echo = try fields.bool("echo") ?? false
        return request
    }

    static func message(_ value: JSONValue, index: Int) throws -> ChatMessageInput {
        let param = "messages[\(index)]"
        guard case .object(let object) = value else {
            throw APIError.invalid("'\(param)' must be an object, got \(value.typeName).", param: param)
        }
        let fields = FieldReader(object: object)
        guard let role = try fields.string("role").map({ $0 }) else {
            throw APIError.invalid("'\(param).role' is required.", param: "\(param).role")
        }
        let mapped: String
        switch role {
        case "system", "developer": mapped = "system"
        case "user", "assistant", "tool": mapped = role
        case "function":
            throw APIError.unsupported("'\(param).role' is 'function': the legacy function-calling API is not supported; use 'tools' and 'tool' messages.", param: "\(param).role")
        default:
            throw APIError.invalid("'\(param).role' must be one of system, user, assistant, tool; got '\(role)'.", param: "\(param).role")
        }
        if fields.value("function_call") != nil {
            throw APIError.unsupported("'\(param).function_call' is the legacy function-calling API, which is not supported; use 'tool_calls'.", param: "\(param).function_call")
        }
        var toolCalls: [ChatToolCall] = []
        if let value = fields.value("tool_calls") {
            guard mapped == "assistant" else {
                throw APIError.invalid("'\(param).tool_calls' is only allowed on assistant messages.", param: "\(param).tool_calls")
            }
            toolCalls = try self.toolCalls(value, param: "\(param).tool_calls")
        }
        var toolCallID: String?
        if mapped == "tool" {
            guard let id = try fields.string("tool_call_id").map({ $0 }) else {
                throw APIError.invalid("'\(param).tool_call_id' is required on tool messages.", param: "\(param).tool_call_id")
            }
            toolCallID = id
        }
        let content: String
        switch fields.value("content") {
        case nil where mapped == "assistant":
            content = ""
        case nil:
            throw APIError.invalid("'\(param).content' is required.", param: "\(param).content")
        case .string(let s)?:
            content = s
        case .array(let parts)?:
            content = try parts.enumerated().map { partIndex, part -> String in
                let partParam = "\(param).content[\(partIndex)]"
                guard case .object(let partObject) = part else {
                    throw APIError.invalid("'\(partParam)' must be an object, got \(part.typeName).", param: partParam)
                }
                let partFields = FieldReader(object: partObject)
                let type = try partFields.string("type")
                guard type == "text" else {
                    throw APIError.unsupported("'\(partParam).type' is '\(type ?? "missing")': only text content parts are supported.", param: "\(partParam).type")
                }
                guard let text = try partFields.string("text") else {
                    throw APIError.invalid("'\(partParam).text' is required.", param: "\(partParam).text")
                }
                return text
            }.joined(separator: "\n")
        case let other?:
            throw APIError.invalid("'\(param).content' must be a string or an array of text parts, got \(other.typeName).", param: "\(param).content")
        }
        return ChatMessageInput(role: mapped, content: content, toolCalls: toolCalls, toolCallID: toolCallID)
    }

    /// An assistant message's `tool_calls`: `[{"id", "type": "function", "function": {"name", "arguments"}}]`.
    static func toolCalls(_ value: JSONValue, param: String) throws -> [ChatToolCall] {
        guard case .array(let items) = value else {
            throw APIError.invalid("'\(param)' must be an array, got \(value.typeName).", param: param)
        }
        return try items.enumerated().map { index, item in
            let itemParam = "\(param)[\(index)]"
            guard case .object(let object) = item else {
                throw APIError.invalid("'\(itemParam)' must be an object, got \(item.typeName).", param: itemParam)
            }
            guard case .string(let id)? = object["id"] else {
                throw APIError.invalid("'\(itemParam).id' must be a string.", param: "\(itemParam).id")
            }
            if let type = object["type"], type != .string("function") {
                throw APIError.invalid("'\(itemParam).type' must be 'function'.", param: "\(itemParam).type")
            }
            guard case .object(let function)? = object["function"] else {
                throw APIError.invalid("'\(itemParam).function' must be an object.", param: "\(itemParam).function")
            }
            guard case .string(let name)? = function["name"] else {
                throw APIError.invalid("'\(itemParam).function.name' must be a string.", param: "\(itemParam).function.name")
            }
            let arguments: String
            switch function["arguments"] {
            case .string(let s)?: arguments = s.isEmpty ? "{}" : s
            case nil, .null?: arguments = "{}"
            case let other?: arguments = other.text
            }
            return ChatToolCall(id: id, name: name, arguments: arguments)
        }
    }

    /// Features Valet lacks fail loudly rather than being silently ignored.
    private static func rejectUnsupported(_ fields: FieldReader, chat: Bool) throws {
        // Chat reads tools itself; the legacy `functions` API is refused everywhere.
        for key in chat ? ["functions"] : ["tools", "functions"] {
            if let value = fields.value(key) {
                if case .array(let items) = value, items.isEmpty { continue }
                throw APIError.unsupported("'\(key)' is not supported here\(chat ? "; use 'tools'" : ""): tool calling is a chat feature.", param: key)
            }
        }
        for key in chat ? ["function_call"] : ["tool_choice", "function_call"] {
            if let value = fields.value(key), value != .string("none") {
                throw APIError.unsupported("'\(key)' is not supported: this server does not do tool or function calling.", param: key)
            }
        }
        if let n = fields.value("best_of"), n != .number(1) {
            throw APIError.unsupported("'best_of' is not supported.", param: "best_of")
        }
        if let suffix = fields.value("suffix"), suffix != .string("") {
            throw APIError.unsupported("'suffix' is not supported.", param: "suffix")
        }
    }

    private static func common(_ fields: FieldReader, limits: Limits, maxTokensFloor: Int) throws -> CommonParameters {
        var p = CommonParameters()
        // Optional, as llama-server and vLLM have it: this server serves one model, so leaving it out means that one.
        p.model = try fields.string("model") ?? ""
        let maxTokens = try fields.integer("max_tokens", maxTokensFloor...Int(Int32.max))
        let maxCompletion = try fields.integer("max_completion_tokens", maxTokensFloor...Int(Int32.max))
        p.maxTokens = maxCompletion ?? maxTokens

        // Omitted fields take the server's defaults; an explicit temperature 0 still means greedy.
        p.sampling = limits.samplingDefaults.parameters
        if let t = try fields.number("temperature", 0...2) { p.sampling.temperature = Float(t) }
        if let v = try fields.number("top_p", 0...1) {
            guard v > 0 else { throw APIError.invalid("'top_p' must be greater than 0.", param: "top_p") }
            p.sampling.topP = Float(v)
        }
        if let k = try fields.integer("top_k", -1...Int(Int32.max)) { p.sampling.topK = max(0, k) }
        if let v = try fields.number("min_p", 0...1) { p.sampling.minP = Float(v) }
        if let v = try fields.number("presence_penalty", -2...2) { p.sampling.presencePenalty = Float(v) }
        if let v = try fields.number("frequency_penalty", -2...2) { p.sampling.frequencyPenalty = Float(v) }
        if let v = try fields.number("repetition_penalty", 0...2) {
            guard v > 0 else { throw APIError.invalid("'repetition_penalty' must be greater than 0.", param: "repetition_penalty") }
            p.sampling.repetitionPenalty = Float(v)
        }
        if let seed = try fields.integer("seed", Int.min...Int.max) { p.sampling.seed = UInt64(bitPattern: Int64(seed)) }
        if let value = fields.value("logit_bias") {
            guard case .object(let biases) = value else {
                throw APIError.invalid("'logit_bias' must be an object mapping token ids to numbers, got \(value.typeName).", param: "logit_bias")
            }
            for (key, bias) in biases {
                guard let token = Int32(key), token >= 0, Int(token) < limits.vocabularySize else {
                    throw APIError.invalid("'logit_bias' key '\(key)' is not a token id of this model (0..<\(limits.vocabularySize)).", param: "logit_bias")
                }
                guard case .number(let x) = bias, (-100...100).contains(x) else {
                    throw APIError.invalid("'logit_bias' value for token \(key) must be a number between -100 and 100.", param: "logit_bias")
                }
                p.sampling.logitBias[token] = Float(x)
            }
        }
        if let value = fields.value("stop") {
            switch value {
            case .string(let s): p.stop = [s]
            case .array(let items):
                p.stop = try items.map { item in
                    guard case .string(let s) = item else {
                        throw APIError.invalid("'stop' must be a string or an array of strings; an element is \(item.typeName).", param: "stop")
                    }
                    return s
                }
            default:
                throw APIError.invalid("'stop' must be a string or an array of strings, got \(value.typeName).", param: "stop")
            }
            p.stop.removeAll { $0.isEmpty }
            if p.stop.count > 16 { throw APIError.invalid("'stop' may hold at most 16 sequences.", param: "stop") }
        }
        p.n = try fields.integer("n", 1...16) ?? 1
        p.stream = try fields.bool("stream") ?? false
        if let value = fields.value("stream_options") {
            guard case .object(let object) = value else {
                throw APIError.invalid("'stream_options' must be an object, got \(value.typeName).", param: "stream_options")
            }
            guard p.stream else {
                throw APIError.invalid("'stream_options' is only allowed when 'stream' is true.", param: "stream_options")
            }
            let options = FieldReader(object: object)
            do {
                p.includeUsage = try options.bool("include_usage") ?? false
            } catch let error as APIError {
                throw APIError.invalid(error.message.replacingOccurrences(of: "'include_usage'", with: "'stream_options.include_usage'"),
                                       param: "stream_options.include_usage")
            }
        }
        _ = try fields.string("user")
        if let name = try fields.string("priority") {
            guard let priority = Priority(name: name) else {
                throw APIError.invalid("'priority' must be one of low, normal, high, critical; got '\(name)'.", param: "priority")
            }
            p.priority = priority
        }
        if let salt = try fields.string("cache_salt") {
            guard !salt.isEmpty else { throw APIError.invalid("'cache_salt' must not be empty.", param: "cache_salt") }
            p.cacheSalt = salt
        }
        if let timeout = try fields.number("queue_timeout", 0...86_400) {
            guard timeout > 0 else { throw APIError.invalid("'queue_timeout' must be greater than 0 seconds.", param: "queue_timeout") }
            p.queueTimeout = timeout
        }
        return p
    }
}
