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

    public static let roles: Set<String> = ["system", "user", "assistant"]

    /// The prompt for `messages`; with `addGenerationPrompt` it ends where the assistant's reply begins.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(ChatTemplateError) -> String {
        try renderParts(messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The prompt with the spans that came from messages marked, for tokenizing them as plain text.
    public func renderParts(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(ChatTemplateError) -> RenderedPrompt {
        guard !messages.isEmpty else { throw ChatTemplateError("the conversation has no messages") }
        for (i, m) in messages.enumerated() where !Self.roles.contains(m.role) {
            throw ChatTemplateError("message \(i) has role '\(m.role)'; expected system, user or assistant")
        }
        var out = RenderedPrompt()
        switch family {
        case .chatml: chatML(messages, addGenerationPrompt, &out)
        case .llama3: llama3(messages, addGenerationPrompt, &out)
        case .llama2: llama2(messages, &out)
        case .mistral: mistral(messages, &out)
        case .zephyr: zephyr(messages, addGenerationPrompt, &out)
        case .gemma: gemma(messages, addGenerationPrompt, &out)
        }
        return out
    }

    // MARK: Families
    // Roles are checked against `roles` first, so writing them as structure cannot smuggle anything in.

    private func chatML(_ messages: [ChatMessage], _ generate: Bool, _ out: inout RenderedPrompt) {
        if let system = defaultSystemMessage, messages[0].role != "system" {
            out.structure("<|im_start|>system\n")
            out.content(system)
            out.structure("<|im_end|>\n")
        }
        for m in messages {
            out.structure("<|im_start|>\(m.role)\n")
            out.content(m.content)
            out.structure("<|im_end|>\n")
        }
        if generate { out.structure("<|im_start|>assistant\n") }
    }

    private func llama3(_ messages: [ChatMessage], _ generate: Bool, _ out: inout RenderedPrompt) {
        out.structure(bosText)
        var messages = messages[...]
        if hasDateHeader {
            let system = messages.first?.role == "system" ? Self.trim(messages.removeFirst().content) : ""
            out.structure("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                + "Today Date: \(dateString)\n\n")
            out.content(system)
            out.structure("<|eot_id|>")
        }
        for m in messages {
            out.structure("<|start_header_id|>\(m.role)<|end_header_id|>\n\n")
            out.content(Self.trim(m.content))
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

    private func mistral(_ messages: [ChatMessage], _ out: inout RenderedPrompt) {
        var (system, turns) = Self.foldSystem(messages)
        out.structure(bosText)
        for m in turns {
            if m.role == "user" {
                var content = m.content
                if let s = system {
                    content = "\(s)\n\n\(content)"
                    system = nil
                }
                out.structure("[INST] ")
                out.content(content)
                out.structure(" [/INST]")
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
        _ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = true
    ) throws(ChatTemplateError) -> [Int32] {
        let prompt = try renderParts(messages, addGenerationPrompt: addGenerationPrompt)
        return tokenizer.encode(prompt.text, addBOS: tokenizer.addBOSByDefault && !rendersBOS, parseSpecial: true,
                                literal: prompt.contentRanges)
    }
}
