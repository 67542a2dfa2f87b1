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
        guard !messages.isEmpty else { throw ChatTemplateError("the conversation has no messages") }
        for (i, m) in messages.enumerated() where !Self.roles.contains(m.role) {
            throw ChatTemplateError("message \(i) has role '\(m.role)'; expected system, user or assistant")
        }
        switch family {
        case .chatml: return chatML(messages, addGenerationPrompt)
        case .llama3: return llama3(messages, addGenerationPrompt)
        case .llama2: return llama2(messages)
        case .mistral: return mistral(messages)
        case .zephyr: return zephyr(messages, addGenerationPrompt)
        case .gemma: return gemma(messages, addGenerationPrompt)
        }
    }

    // MARK: Families

    private func chatML(_ messages: [ChatMessage], _ generate: Bool) -> String {
        var out = ""
        if let system = defaultSystemMessage, messages[0].role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if generate { out += "<|im_start|>assistant\n" }
        return out
    }

    private func llama3(_ messages: [ChatMessage], _ generate: Bool) -> String {
        var out = bosText
        var messages = messages[...]
        if hasDateHeader {
            let system = messages.first?.role == "system" ? Self.trim(messages.removeFirst().content) : ""
            out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                + "Today Date: \(dateString)\n\n\(system)<|eot_id|>"
        }
        for m in messages { out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(Self.trim(m.content))<|eot_id|>" }
        if generate { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
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

    private func llama2(_ messages: [ChatMessage]) -> String {
        let (system, turns) = Self.foldSystem(messages)
        var out = ""
        for (i, m) in turns.enumerated() {
            var content = m.content
            if i == 0, let system { content = "<<SYS>>\n\(system)\n<</SYS>>\n\n" + content }
            if m.role == "user" {
                out += "\(bosText)[INST] \(Self.trim(content)) [/INST]"
            } else {
                out += " \(Self.trim(content)) \(eosText)"
            }
        }
        return out
    }

    private func mistral(_ messages: [ChatMessage]) -> String {
        var (system, turns) = Self.foldSystem(messages)
        var out = bosText
        for m in turns {
            if m.role == "user" {
                var content = m.content
                if let s = system {
                    content = "\(s)\n\n\(content)"
                    system = nil
                }
                out += "[INST] \(content) [/INST]"
            } else {
                out += m.content + eosText
            }
        }
        return out
    }

    private func zephyr(_ messages: [ChatMessage], _ generate: Bool) -> String {
        var out = ""
        for m in messages { out += "<|\(m.role)|>\n\(m.content)\(eosText)\n" }
        if generate { out += "<|assistant|>\n" }
        return out
    }

    private func gemma(_ messages: [ChatMessage], _ generate: Bool) -> String {
        var (system, turns) = Self.foldSystem(messages)
        var out = bosText
        for m in turns {
            var prefix = ""
            if m.role == "user", let s = system {
                prefix = "\(s)\n\n"
                system = nil
            }
            let role = m.role == "assistant" ? "model" : m.role
            out += "<start_of_turn>\(role)\n\(prefix)\(Self.trim(m.content))<end_of_turn>\n"
        }
        if generate { out += "<start_of_turn>model\n" }
        return out
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
    /// The prompt's token ids: rendered, then encoded with special tokens parsed and BOS added only when
    /// the tokenizer wants one and the template did not already write it.
    public func promptTokens(
        _ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool = true
    ) throws(ChatTemplateError) -> [Int32] {
        let text = try render(messages, addGenerationPrompt: addGenerationPrompt)
        return tokenizer.encode(text, addBOS: tokenizer.addBOSByDefault && !rendersBOS, parseSpecial: true)
    }
}
