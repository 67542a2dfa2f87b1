// One turn of a conversation, as OpenAI's chat API and the chat templates name them.

public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant` or `tool`.
    public var role: String
    public var content: String
    /// An assistant turn's function calls, rendered after its content in the template's tool syntax.
    public var toolCalls: [ChatToolCall]
    /// A `tool` turn: the id of the call whose result this is.
    public var toolCallID: String?

    public init(role: String, content: String, toolCalls: [ChatToolCall] = [], toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String, toolCalls: [ChatToolCall] = []) -> ChatMessage {
        ChatMessage(role: "assistant", content: content, toolCalls: toolCalls)
    }
    public static func tool(_ content: String, callID: String) -> ChatMessage {
        ChatMessage(role: "tool", content: content, toolCallID: callID)
    }
}
