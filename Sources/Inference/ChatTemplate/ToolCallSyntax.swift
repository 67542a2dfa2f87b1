// How a model family writes function calls in its reply: the text around the calls and the key of the arguments.
// The parser reads calls out of generated text with it, and the grammar that forces a call is built from it.

public struct ToolCallSyntax: Sendable, Equatable {
    public enum Style: String, Sendable {
        /// `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`, one block per call (Hermes, Qwen2.5; also the
        /// generic format).
        case hermes
        /// A bare `{"name": …, "parameters": …}` object as the whole reply (Llama 3.1+ custom tools).
        case llama3
        /// `[TOOL_CALLS] [{"name": …, "arguments": …}, …]` (Mistral v3+).
        case mistral
    }

    public var style: Style
    /// Written before the first call.
    public var start: String
    /// Written between two calls.
    public var separator: String
    /// Written after the last call.
    public var end: String
    /// The object key holding the arguments.
    public var argumentsKey: String
    /// Where the reply turns from text into calls: an `auto` request's grammar switches on here. Empty for
    /// llama3, whose call can only be the whole reply.
    public var trigger: String

    public static let hermes = ToolCallSyntax(
        style: .hermes, start: "<tool_call>\n", separator: "\n</tool_call>\n<tool_call>\n", end: "\n</tool_call>",
        argumentsKey: "arguments", trigger: "<tool_call>")
    public static let llama3 = ToolCallSyntax(
        style: .llama3, start: "", separator: "\n", end: "", argumentsKey: "parameters", trigger: "")
    public static let mistral = ToolCallSyntax(
        style: .mistral, start: "[TOOL_CALLS] [", separator: ", ", end: "]", argumentsKey: "arguments",
        trigger: "[TOOL_CALLS]")

    /// The text of one call as the model writes it (and as history renders it).
    public func call(name: String, arguments: String) -> String {
        #"{"name": \#(ToolJSON.quote(name)), "\#(argumentsKey)": \#(arguments)}"#
    }
}

extension ChatTemplate {
    /// How tools are put into this template's prompts.
    public enum ToolFormat: String, Sendable {
        /// The family's own format: a `# Tools` system section with `<tools>` (ChatML: Hermes / Qwen2.5).
        case hermes
        /// Llama 3.1+: the tools lead the first user turn; results come back in `ipython` turns.
        case llama3
        /// Mistral: `[AVAILABLE_TOOLS]` before the last user turn, `[TOOL_RESULTS]` for results.
        case mistral
        /// Families without a tool format of their own: a system-prompt section listing the tools and the
        /// `<tool_call>` syntax; results come back as user turns wrapped in `<tool_response>`.
        case generic
    }

    public var toolFormat: ToolFormat {
        switch family {
        case .chatml: .hermes
        case .llama3: hasDateHeader ? .llama3 : .generic
        case .mistral: .mistral
        case .llama2, .zephyr, .gemma: .generic
        }
    }

    /// What the model writes to call tools with this template.
    public var toolCallSyntax: ToolCallSyntax {
        switch toolFormat {
        case .hermes, .generic: .hermes
        case .llama3: .llama3
        case .mistral: .mistral
        }
    }
}
