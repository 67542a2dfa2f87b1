// The Responses API's wire objects: the response, its output items (the assistant message, function calls), and
// the typed stream events the official client's `responses.stream` folds back into a response.

/// The one output_text part of Valet's answer.
struct OutputText: Encodable {
    var type = "output_text"
    var text: String
    var annotations: [String] = []
    var logprobs: [String] = []
}

/// The assistant message item; `text` nil while no content part has been opened yet.
struct OutputMessage: Encodable {
    var id: String
    var status: String
    var text: String?

    enum CodingKeys: String, CodingKey { case type, id, status, role, content }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("message", forKey: .type)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encode("assistant", forKey: .role)
        try c.encode(text.map { [OutputText(text: $0)] } ?? [], forKey: .content)
    }
}

/// A call the model made: `arguments` is the JSON text of its arguments (as far as written, while streaming).
struct FunctionCallItem: Encodable {
    var type = "function_call"
    var id: String
    var callID: String
    var name: String
    var arguments: String
    var status: String
    enum CodingKeys: String, CodingKey { case type, id, callID = "call_id", name, arguments, status }
}

/// One entry of a response's `output`.
enum OutputItem: Encodable {
    case message(OutputMessage)
    case functionCall(FunctionCallItem)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .message(let m): try m.encode(to: encoder)
        case .functionCall(let f): try f.encode(to: encoder)
        }
    }
}

struct ResponseUsage: Encodable {
    var inputTokens: Int
    var outputTokens: Int
    /// Prompt tokens whose KV came from the prefix cache.
    var cachedTokens = 0

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens", inputTokensDetails = "input_tokens_details", outputTokens = "output_tokens"
        case outputTokensDetails = "output_tokens_details", totalTokens = "total_tokens"
    }
    enum InputKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    enum OutputKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inputTokens, forKey: .inputTokens)
        var input = c.nestedContainer(keyedBy: InputKeys.self, forKey: .inputTokensDetails)
        try input.encode(cachedTokens, forKey: .cachedTokens)
        try c.encode(outputTokens, forKey: .outputTokens)
        var output = c.nestedContainer(keyedBy: OutputKeys.self, forKey: .outputTokensDetails)
        try output.encode(0, forKey: .reasoningTokens)
        try c.encode(inputTokens + outputTokens, forKey: .totalTokens)
    }
}

/// What a response object repeats back of its request.
struct ResponseSettings: Sendable {
    var id: String
    var createdAt: Int
    var model: String
    var instructions: String?
    var maxOutputTokens: Int?
    var temperature: Float
    var topP: Float
    var echo = ResponsesRequest.Echo()
    var parallelToolCalls = true
}

struct ResponseObject: Encodable {
    var settings: ResponseSettings
    /// in_progress, completed, incomplete or failed.
    var status: String
    var output: [OutputItem] = []
    var usage: ResponseUsage?
    /// Why an incomplete response stopped (`max_output_tokens`).
    var incompleteReason: String?

    enum CodingKeys: String, CodingKey {
        case id, object, createdAt = "created_at", status, background, error
        case incompleteDetails = "incomplete_details", instructions, maxOutputTokens = "max_output_tokens", model, output
        case parallelToolCalls = "parallel_tool_calls", previousResponseID = "previous_response_id", reasoning, store
        case temperature, text, toolChoice = "tool_choice", tools, topP = "top_p", truncation, usage, user, metadata
    }
    enum ReasonKeys: String, CodingKey { case reason, effort, summary, format, type }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(settings.id, forKey: .id)
        try c.encode("response", forKey: .object)
        try c.encode(settings.createdAt, forKey: .createdAt)
        try c.encode(status, forKey: .status)
        try c.encode(false, forKey: .background)
        try c.encodeNil(forKey: .error)
        if let incompleteReason {
            var details = c.nestedContainer(keyedBy: ReasonKeys.self, forKey: .incompleteDetails)
            try details.encode(incompleteReason, forKey: .reason)
        } else {
            try c.encodeNil(forKey: .incompleteDetails)
        }
        try c.encodeOrNull(settings.instructions, forKey: .instructions)
        try c.encodeOrNull(settings.maxOutputTokens, forKey: .maxOutputTokens)
        try c.encode(settings.model, forKey: .model)
        try c.encode(output, forKey: .output)
        try c.encode(settings.parallelToolCalls, forKey: .parallelToolCalls)
        try c.encodeNil(forKey: .previousResponseID)
        var reasoning = c.nestedContainer(keyedBy: ReasonKeys.self, forKey: .reasoning)
        try reasoning.encodeNil(forKey: .effort)
        try reasoning.encodeNil(forKey: .summary)
        try c.encode(false, forKey: .store)
        try c.encode(ModelCard.rounded(settings.temperature), forKey: .temperature)
        var text = c.nestedContainer(keyedBy: ReasonKeys.self, forKey: .text)
        try text.encode(settings.echo.format, forKey: .format)
        try c.encode(settings.echo.toolChoice, forKey: .toolChoice)
        try c.encode(settings.echo.tools, forKey: .tools)
        try c.encode(ModelCard.rounded(settings.topP), forKey: .topP)
        try c.encode("disabled", forKey: .truncation)
        try c.encodeOrNull(usage, forKey: .usage)
        try c.encodeNil(forKey: .user)
        try c.encode([String: String](), forKey: .metadata)
    }
}

// MARK: stream events; every one carries its type and the stream's running sequence number.

struct LifecycleEvent: Encodable {
    var type: String
    var sequenceNumber: Int
    var response: ResponseObject
    enum CodingKeys: String, CodingKey { case type, sequenceNumber = "sequence_number", response }
}

struct OutputItemEvent: Encodable {
    var type: String
    var sequenceNumber: Int
    var outputIndex = 0
    var item: OutputItem
    enum CodingKeys: String, CodingKey { case type, sequenceNumber = "sequence_number", outputIndex = "output_index", item }
}

struct ContentPartEvent: Encodable {
    var type: String
    var sequenceNumber: Int
    var itemID: String
    var outputIndex = 0
    var contentIndex = 0
    var part: OutputText
    enum CodingKeys: String, CodingKey {
        case type, sequenceNumber = "sequence_number", itemID = "item_id", outputIndex = "output_index"
        case contentIndex = "content_index", part
    }
}

struct TextEvent: Encodable {
    var type: String
    var sequenceNumber: Int
    var itemID: String
    var outputIndex = 0
    var contentIndex = 0
    /// The delta for `response.output_text.delta`, the whole text for `.done`.
    var text: String
    var logprobs: [String] = []
    enum CodingKeys: String, CodingKey {
        case type, sequenceNumber = "sequence_number", itemID = "item_id", outputIndex = "output_index"
        case contentIndex = "content_index", delta, text, logprobs
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(sequenceNumber, forKey: .sequenceNumber)
        try c.encode(itemID, forKey: .itemID)
        try c.encode(outputIndex, forKey: .outputIndex)
        try c.encode(contentIndex, forKey: .contentIndex)
        try c.encode(text, forKey: type.hasSuffix(".delta") ? .delta : .text)
        try c.encode(logprobs, forKey: .logprobs)
    }
}

/// `response.function_call_arguments.delta` (a fragment) and `.done` (the whole arguments, and the name).
struct FunctionArgumentsEvent: Encodable {
    var type: String
    var sequenceNumber: Int
    var itemID: String
    var outputIndex: Int
    var text: String
    var name: String?
    enum CodingKeys: String, CodingKey {
        case type, sequenceNumber = "sequence_number", itemID = "item_id", outputIndex = "output_index", delta, arguments, name
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(sequenceNumber, forKey: .sequenceNumber)
        try c.encode(itemID, forKey: .itemID)
        try c.encode(outputIndex, forKey: .outputIndex)
        try c.encode(text, forKey: type.hasSuffix(".delta") ? .delta : .arguments)
        try c.encodeIfPresent(name, forKey: .name)
    }
}

/// A failure after the stream began: the Responses `error` event, with the usual error object too so clients
/// that look for `error` (the openai client does) raise it.
struct ErrorEvent: Encodable {
    var sequenceNumber: Int
    var error: APIError
    enum CodingKeys: String, CodingKey { case type, sequenceNumber = "sequence_number", code, message, param, error }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("error", forKey: .type)
        try c.encode(sequenceNumber, forKey: .sequenceNumber)
        try c.encodeOrNull(error.code, forKey: .code)
        try c.encode(error.message, forKey: .message)
        try c.encodeOrNull(error.param, forKey: .param)
        try c.encode(ErrorEnvelope(error: error).error, forKey: .error)
    }
}
