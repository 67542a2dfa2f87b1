// The functions a chat offers the model, and the calls it made, in the form the chat templates render.

/// A function the model may call.
public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// The JSON Schema of the arguments, as JSON text (the API layer serializes it).
    public var parameters: String

    public init(name: String, description: String? = nil, parameters: String = #"{"type": "object", "properties": {}}"#) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }

    /// `{"type": "function", "function": {...}}`, the shape OpenAI's API and the Hermes/Qwen and Mistral templates use.
    public var json: String {
        var function = #"{"name": \#(ToolJSON.quote(name))"#
        if let description { function += #", "description": \#(ToolJSON.quote(description))"# }
        function += #", "parameters": \#(parameters)}"#
        return #"{"type": "function", "function": \#(function)}"#
    }
}

/// A call the assistant made, as the conversation history carries it.
public struct ChatToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The arguments as JSON text, as OpenAI's API carries them.
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

enum ToolJSON {
    /// A JSON string literal; non-ASCII stays as it is, since the tokenizer reads UTF-8.
    static func quote(_ s: String) -> String {
        JSONText.quoted(s)
    }
}
