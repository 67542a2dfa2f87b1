// The prompt formats Valet renders natively, and how each is told apart in a `tokenizer.chat_template`.

public enum ChatTemplateFamily: String, Sendable, CaseIterable {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM, Qwen, OpenHermes…), with the template's default system message if it has one.
    case chatml
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`, led by `<|begin_of_text|>`.
    case llama3
    /// `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] … </s>`.
    case llama2
    /// `<s>[INST] … [/INST]…</s>`, no system block: the system message leads the first user turn.
    case mistral
    /// `<|user|>\n…</s>\n`.
    case zephyr
    /// `<start_of_turn>user\n…<end_of_turn>\n`, assistant turns named `model`, no system role.
    case gemma

    /// The family whose distinctive markers the template uses, or nil.
    public init?(template: String) {
        if template.contains("<|im_start|>") {
            self = .chatml
        } else if template.contains("<|start_header_id|>") {
            self = .llama3
        } else if template.contains("<start_of_turn>") {
            self = .gemma
        } else if template.contains("[INST]") {
            self = template.contains("<<SYS>>") ? .llama2 : .mistral
        } else if template.contains("<|user|>") && template.contains("<|assistant|>") {
            self = .zephyr
        } else {
            return nil
        }
    }

    /// Whether the rendered prompt already starts with the BOS text (so the tokenizer must not add another).
    public var rendersBOS: Bool {
        switch self {
        case .llama3, .llama2, .mistral, .gemma: true
        case .chatml, .zephyr: false
        }
    }
}
