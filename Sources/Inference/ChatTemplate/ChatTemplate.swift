// Renders a conversation into the prompt text a model's `tokenizer.chat_template` would produce.
import Foundation

/// Valet recognises the template's family by its markers and renders that family natively, giving the
/// same text the Jinja template gives (with transformers' trim_blocks/lstrip_blocks settings).
public struct ChatTemplate: Sendable {
    public let family: ChatTemplateFamily
    /// The template text from the GGUF, if it had one.
    public let source: String?
    /// ChatML: the system message the template inserts when the conversation has none.
    public let defaultSystemMessage: String?
    /// Set when the template was missing or not recognised and ChatML is used instead; the caller logs it.
    public let warning: String?
    public let bosText: String
    public let eosText: String
    /// Llama 3.1 and later: a system turn always leads, opening with the knowledge cutoff and today's date.
    public let hasDateHeader: Bool
    /// The "Today Date" of that header. Templates that call `strftime_now` use the current date (as
    /// transformers does); the others their built-in "26 Jul 2024". Settable for reproducible prompts.
    public var dateString: String

    /// Reads `tokenizer.chat_template` and the BOS/EOS token texts from the file.
    public init(gguf: GGUFFile) {
        let tokens = gguf.stringArray("tokenizer.ggml.tokens") ?? []
        func text(_ key: String) -> String? {
            guard let id = gguf.int("tokenizer.ggml.\(key)"), id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        self.init(template: gguf.string("tokenizer.chat_template"), bosText: text("bos_token_id"),
                  eosText: text("eos_token_id"))
    }

    /// `bosText`/`eosText` default to the family's usual tokens.
    public init(template: String?, bosText: String? = nil, eosText: String? = nil) {
        source = template
        let recognised = template.flatMap(ChatTemplateFamily.init(template:))
        family = recognised ?? .chatml
        switch (template, recognised) {
        case (nil, _): warning = "the model has no chat template; using ChatML"
        case (_?, nil): warning = "unrecognised chat template; using ChatML"
        default: warning = nil
        }
        defaultSystemMessage = family == .chatml ? template.flatMap(Self.chatMLDefaultSystem) : nil
        hasDateHeader = family == .llama3 && template?.contains("Cutting Knowledge Date") == true
        if hasDateHeader && template?.contains("strftime_now") == true {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "dd MMM yyyy"
            dateString = f.string(from: Date())
        } else {
            dateString = "26 Jul 2024"
        }
        switch family {
        case .llama3:
            self.bosText = bosText ?? "<|begin_of_text|>"
            self.eosText = eosText ?? "<|eot_id|>"
        case .gemma:
            self.bosText = bosText ?? "<bos>"
            self.eosText = eosText ?? "<eos>"
        default:
            self.bosText = bosText ?? "<s>"
            self.eosText = eosText ?? "</s>"
        }
    }

    /// Whether the rendered prompt starts with the BOS text itself: encode it with `addBOS: false` then
    /// (and `parseSpecial: true`), or the model sees two BOS tokens.
    public var rendersBOS: Bool { family.rendersBOS }

    public static let roles: Set<String> = ["system", "user", "assistant", "tool"]

    /// The prompt for `messages`; with `addGenerationPrompt` it ends where the assistant's reply begins. `tools`
    /// are offered in the template's tool format (see `toolFormat`).
    public func render(_ messages: [ChatMessage], tools: [ToolDefinition] = [],
                       addGenerationPrompt: Bool) throws(ChatTemplateError) -> String {
        try renderParts(messages, tools: tools, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The prompt with the spans that came from messages marked, for tokenizing them as plain text. Tool
    /// definitions, call arguments and tool results count as message text too.
    public func renderParts(_ messages: [ChatMessage], tools: [ToolDefinition] = [],
                            addGenerationPrompt: Bool) throws(ChatTemplateError) -> RenderedPrompt {
        guard !messages.isEmpty else { throw ChatTemplateError("the conversation has no messages") }
        for (i, m) in messages.enumerated() where !Self.roles.contains(m.role) {
            throw ChatTemplateError("message \(i) has role '\(m.role)'; expected system, user, assistant or tool")
        }
        var messages = messages
        var tools = tools
        let usesTools = !tools.isEmpty || messages.contains { $0.role == "tool" || !$0.toolCalls.isEmpty }
        if usesTools && toolFormat == .generic {
            messages = Self.genericToolTurns(messages, tools: tools)
            tools = []
        }
        var out = RenderedPrompt()
        switch family {
        case .chatml: chatML(messages, tools, addGenerationPrompt, &out)
        case .llama3: llama3(messages, tools, addGenerationPrompt, &out)
        case .llama2: llama2(messages, &out)
        case .mistral: mistral(messages, tools, &out)
        case .zephyr: zephyr(messages, addGenerationPrompt, &out)
        case .gemma: gemma(messages, addGenerationPrompt, &out)
        }
        return out
    }

    // MARK: Families
    // Roles are checked against `roles` first, so writing them as structure cannot smuggle anything in.

    /// With tools, the Hermes / Qwen2.5 layout: a `# Tools` section closes the system turn, calls are
    /// `<tool_call>` blocks after the assistant's text, and consecutive results share one user turn.
    private func chatML(_ messages: [ChatMessage], _ tools: [ToolDefinition], _ generate: Bool, _ out: inout RenderedPrompt) {
        var turns = messages[...]
        if !tools.isEmpty {
            let system = turns.first?.role == "system" ? turns.removeFirst().content : (defaultSystemMessage ?? "")
            out.structure("<|im_start|>system\n")
            if !system.isEmpty {
                out.content(system)
                out.structure("\n\n")
            }
            out.structure("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
            for tool in tools {
                out.structure("\n")
                out.content(tool.json)
            }
            out.structure("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                + "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                + "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
        } else if let system = defaultSystemMessage, messages[0].role != "system" {
            out.structure("<|im_start|>system\n")
            out.content(system)
            out.structure("<|im_end|>\n")
        }
        let syntax = ToolCallSyntax.hermes
        var previous: String?
        for m in turns {
            defer { previous = m.role }
            if m.role == "tool" {
                if previous != "tool" { out.structure("<|im_start|>user") }
                out.structure("\n<tool_response>\n")
                out.content(m.content)
                out.structure("\n</tool_response>")
                continue
            }
            if previous == "tool" { out.structure("<|im_end|>\n") }
            if m.toolCalls.isEmpty {
                out.structure("<|im_start|>\(m.role)\n")
                out.content(m.content)
            } else {
                out.structure("<|im_start|>\(m.role)")
                if !m.content.isEmpty {
                    out.structure("\n")
                    out.content(m.content)
                }
                for call in m.toolCalls {
                    out.structure("\n<tool_call>\n")
                    out.content(syntax.call(name: call.name, arguments: call.arguments))
                    out.structure("\n</tool_call>")
                }
            }
            out.structure("<|im_end|>\n")
        }
        if previous == "tool" { out.structure("<|im_end|>\n") }
        if generate { out.structure("<|im_start|>assistant\n") }
    }

    /// With tools (Llama 3.1+ only; 3.0 takes the generic format), the tools lead the first user turn, a call
    /// is the assistant's whole turn as JSON, and a result is an `ipython` turn.
    private func llama3(_ messages: [ChatMessage], _ tools: [ToolDefinition], _ generate: Bool, _ out: inout RenderedPrompt) {
        out.structure(bosText)
        var messages = messages[...]
        if hasDateHeader {
            let system = messages.first?.role == "system" ? Self.trim(messages.removeFirst().content) : ""
            out.structure("<|start_header_id|>system<|end_header_id|>\n\n" + (tools.isEmpty ? "" : "Environment: ipython\n")
                + "Cutting Knowledge Date: December 2023\nToday Date: \(dateString)\n\n")
            out.content(system)
            out.structure("<|eot_id|>")
        }
        var pendingTools = tools
        let syntax = ToolCallSyntax.llama3
        for m in messages {
            let role = m.role == "tool" ? "ipython" : m.role
            out.structure("<|start_header_id|>\(role)<|end_header_id|>\n\n")
            if m.role == "user" && !pendingTools.isEmpty {
                out.structure("Given the following functions, please respond with a JSON for a function call with its "
                    + "proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function "
                    + "name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n")
                for tool in pendingTools {
                    out.content(tool.json)
                    out.structure("\n\n")
                }
                pendingTools = []
            }
            if m.toolCalls.isEmpty {
                out.content(Self.trim(m.content))
            } else {
                out.content(m.toolCalls.map { syntax.call(name: $0.name, arguments: $0.arguments) }
                    .joined(separator: syntax.separator))
            }
            out.structure("<|eot_id|>")
        }
        if generate { out.structure("<|start_header_id|>assistant<|end_header_id|>\n\n") }
    }

    /// The first system message, if any, and the turns after it; later system messages count as user turns,
    /// since these formats have no other place for them.
    private static func foldSystem(_ messages: [ChatMessage]) -> (system: String?, turns: [ChatMessage]) {
        var turns = messages
        var system: String?
        if turns[0].role == "system" { system = turns.removeFirst().content }
        for i in turns.indices where turns[i].role == "system" { turns[i].role = "user" }
        return (system, turns)
    }

    private func llama2(_ messages: [ChatMessage], _ out: inout RenderedPrompt) {
        let (system, turns) = Self.foldSystem(messages)
        for (i, m) in turns.enumerated() {
            // <<SYS>> is ordinary text in these vocabularies, so the system block is content with the message.
            var content = m.content
            if i == 0, let system { content = "<<SYS>>\n\(system)\n<</SYS>>\n\n" + content }
            if m.role == "user" {
                out.structure("\(bosText)[INST] ")
                out.content(Self.trim(content))
                out.structure(" [/INST]")
            } else {
                out.structure(" ")
                out.content(Self.trim(content))
                out.structure(" \(eosText)")
            }
        }
    }

    /// With tools, Mistral v3's layout: `[AVAILABLE_TOOLS]` just before the last user turn, calls as a
    /// `[TOOL_CALLS]` list, each result in `[TOOL_RESULTS]`.
    private func mistral(_ messages: [ChatMessage], _ tools: [ToolDefinition], _ out: inout RenderedPrompt) {
        var (system, turns) = Self.foldSystem(messages)
        out.structure(bosText)
        let lastUser = turns.lastIndex { $0.role == "user" }
        let syntax = ToolCallSyntax.mistral
        for (i, m) in turns.enumerated() {
            if m.role == "user" {
                var content = m.content
                if let s = system {
                    content = "\(s)\n\n\(content)"
                    system = nil
                }
                if i == lastUser && !tools.isEmpty {
                    out.structure("[AVAILABLE_TOOLS] [")
                    out.content(tools.map(\.json).joined(separator: ", "))
                    out.structure("][/AVAILABLE_TOOLS]")
                }
                out.structure("[INST] ")
                out.content(content)
                out.structure(" [/INST]")
            } else if m.role == "tool" {
                out.structure("[TOOL_RESULTS] ")
                out.content(#"{"content": \#(ToolJSON.quote(m.content)), "call_id": \#(ToolJSON.quote(m.toolCallID ?? ""))}"#)
                out.structure("[/TOOL_RESULTS]")
            } else if !m.toolCalls.isEmpty {
                out.content(m.content)
                out.structure("[TOOL_CALLS] [")
                out.content(m.toolCalls.map {
                    String(syntax.call(name: $0.name, arguments: $0.arguments).dropLast()) + #", "id": \#(ToolJSON.quote($0.id))}"#
                }.joined(separator: syntax.separator))
                out.structure("]\(eosText)")
            } else {
                out.content(m.content)
                out.structure(eosText)
            }
        }
    }

    private func zephyr(_ messages: [ChatMessage], _ generate: Bool, _ out: inout RenderedPrompt) {
        for m in messages {
            out.structure("<|\(m.role)|>\n")
            out.content(m.content)
            out.structure("\(eosText)\n")
        }
        if generate { out.structure("<|assistant|>\n") }
    }

    private func gemma(_ messages: [ChatMessage], _ generate: Bool, _ out: inout RenderedPrompt) {
        var (system, turns) = Self.foldSystem(messages)
        out.structure(bosText)
        for m in turns {
            var prefix = ""
            if m.role == "user", let s = system {
                prefix = "\(s)\n\n"
                system = nil
            }
            let role = m.role == "assistant" ? "model" : m.role
            out.structure("<start_of_turn>\(role)\n")
            out.content(prefix + Self.trim(m.content))
            out.structure("<end_of_turn>\n")
        }
        if generate { out.structure("<start_of_turn>model\n") }
    }

    // MARK: The generic tool format

    /// For families with no tool format of their own: the tools become a section of the system message, calls
    /// `<tool_call>` blocks in the assistant's text, and results user turns of `<tool_response>` blocks (one turn
    /// for consecutive results, so the families that insist on alternating turns accept it).
    static func genericToolTurns(_ messages: [ChatMessage], tools: [ToolDefinition]) -> [ChatMessage] {
        var input = messages
        if !tools.isEmpty {
            let section = genericToolSection(tools)
            if input[0].role == "system" {
                input[0].content += "\n\n" + section
            } else {
                input.insert(.system(section), at: 0)
            }
        }
        let syntax = ToolCallSyntax.hermes
        var turns: [ChatMessage] = []
        var previous: String?
        for m in input {
            defer { previous = m.role }
            switch m.role {
            case "tool":
                let block = "<tool_response>\n\(m.content)\n</tool_response>"
                if previous == "tool" {
                    turns[turns.count - 1].content += "\n" + block
                } else {
                    turns.append(.user(block))
                }
            case "assistant" where !m.toolCalls.isEmpty:
                let calls = m.toolCalls.map { "<tool_call>\n\(syntax.call(name: $0.name, arguments: $0.arguments))\n</tool_call>" }
                turns.append(.assistant((m.content.isEmpty ? "" : m.content + "\n") + calls.joined(separator: "\n")))
            default:
                turns.append(ChatMessage(role: m.role, content: m.content))
            }
        }
        return turns
    }

    /// The generic format's system section.
    static func genericToolSection(_ tools: [ToolDefinition]) -> String {
        "# Tools\n\nYou can call the functions below. Each is a JSON object with its name, what it does, and the JSON "
            + "Schema of its arguments:\n<tools>\n" + tools.map(\.json).joined(separator: "\n") + "\n</tools>\n\n"
            + "To call functions, reply with nothing but one block per call:\n<tool_call>\n"
            + "{\"name\": <function name>, \"arguments\": <the arguments as a JSON object>}\n</tool_call>\n"
            + "Each result comes back to you in a <tool_response> block."
    }

    // MARK: Helpers

    /// Jinja's `trim` / Python's `strip()`: whitespace off both ends.
    static func trim(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }

    /// The literal system text a ChatML template puts in when the conversation brings none, e.g. SmolLM2's
    /// "You are a helpful AI assistant named SmolLM, trained by Hugging Face". Only a plain literal counts:
    /// text with quotes or Jinja delimiters is template logic, not a default message.
    static func chatMLDefaultSystem(_ template: String) -> String? {
        let open = "<|im_start|>system"
        var rest = template[...]
        while let start = rest.range(of: open) {
            var body = rest[start.upperBound...]
            rest = body
            if body.hasPrefix("\n") {
                body = body.dropFirst()
            } else if body.hasPrefix("\\n") {
                body = body.dropFirst(2)
            } else {
                continue
            }
            guard let end = body.range(of: "<|im_end|>") else { continue }
            let text = body[..<end.lowerBound]
            if text.isEmpty || text.contains(where: { "'\"{}".contains($0) }) { continue }
            // An escaped newline inside the literal stands for a newline in the output.
            return String(text).replacing("\\n", with: "\n")
        }
        return nil
    }
}

extension ChatTemplate {
    /// The prompt's token ids: the template's control tokens parsed, message content always as text (a user
    /// who types `<|im_end|>` gets those characters, not the end of their turn), and BOS added only when the
    /// tokenizer wants one and the template did not already write it.
    public func promptTokens(
        _ messages: [ChatMessage], tools: [ToolDefinition] = [], tokenizer: Tokenizer, addGenerationPrompt: Bool = true
    ) throws(ChatTemplateError) -> [Int32] {
        let prompt = try renderParts(messages, tools: tools, addGenerationPrompt: addGenerationPrompt)
        return tokenizer.encode(prompt.text, addBOS: tokenizer.addBOSByDefault && !rendersBOS, parseSpecial: true,
                                literal: prompt.contentRanges)
    }
}
