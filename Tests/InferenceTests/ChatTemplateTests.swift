// Checks chat rendering against jinja2 running the model's own template and the public family templates.
import Foundation
import TestSupport
import Testing
@testable import Inference

let conversations: [[ChatMessage]] = [
    [.user("Hi")],
    [.system("You are terse."), .user("What is 2+2?")],
    [.user("Hello"), .assistant("Hi! How can I help?"), .user("Tell me a joke.")],
    [.system("Be nice."), .user("  spaced out  "), .assistant(" an answer\n"), .user("thanks")],
    [.user("multi\nline\n\ncontent with <b>tags</b> and {{ braces }}"), .assistant("ok 😀")],
]

@Suite struct ChatTemplateTests {
    func reference(model: String?) throws -> [String: Any] {
        var request: [String: Any] = [
            "conversations": conversations.map { $0.map { ["role": $0.role, "content": $0.content] } },
        ]
        if let model { request["model"] = model }
        let answer = try PythonReference.run(request)
        return try #require(answer["renders"] as? [String: Any])
    }

    @Test func smolLMRendersLikeItsJinjaTemplate() throws {
        guard let path = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
        let template = ChatTemplate(gguf: try GGUFFile(path: path))
        #expect(template.family == .chatml)
        #expect(template.warning == nil)
        #expect(template.rendersBOS == false)
        #expect(template.defaultSystemMessage == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        let renders = try #require(try reference(model: path)["model"] as? [[Any]])
        for (i, c) in conversations.enumerated() {
            for (j, generate) in [false, true].enumerated() {
                #expect(try template.render(c, addGenerationPrompt: generate) == renders[i][j] as? String,
                        "conversation \(i), generation prompt \(generate)")
            }
        }
        #expect(try template.render([.user("Hi")], addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    /// Each public family template is recognised and rendered as jinja2 renders it, wherever the template
    /// accepts the conversation (Mistral and Gemma refuse a system role; Valet folds it in, checked below).
    @Test func familiesRenderLikePublicTemplates() throws {
        let renders = try reference(model: nil)
        let answer = try PythonReference.run(["templates": true])
        let templates = try #require(answer["templates"] as? [String: [String]])
        #expect(Set(templates.keys) == Set(ChatTemplateFamily.allCases.map(\.rawValue) + ["llama3.1"]))
        for (name, entry) in templates.sorted(by: { $0.key < $1.key }) {
            let family = try #require(ChatTemplateFamily(rawValue: String(name.prefix { $0 != "." })))
            let template = ChatTemplate(template: entry[0], bosText: entry[1], eosText: entry[2])
            #expect(template.family == family)
            #expect(template.warning == nil)
            #expect(template.hasDateHeader == (name == "llama3.1"))
            let expected = try #require(renders[name] as? [[Any]])
            var compared = 0
            for (i, c) in conversations.enumerated() {
                for (j, generate) in [false, true].enumerated() {
                    guard let want = expected[i][j] as? String else { continue }
                    #expect(try template.render(c, addGenerationPrompt: generate) == want,
                            "\(name) conversation \(i), generation prompt \(generate)")
                    compared += 1
                }
            }
            #expect(compared >= 6, "\(name): too few conversations accepted by the reference template")
        }
    }

    @Test func currentDateForTemplatesThatAskForIt() throws {
        let t = ChatTemplate(template: "<|start_header_id|> Cutting Knowledge Date strftime_now(\"%d %b %Y\")")
        #expect(t.hasDateHeader)
        #expect(t.dateString != "26 Jul 2024" && t.dateString.count == 11)
        var fixed = t
        fixed.dateString = "01 Jan 2030"
        #expect(try fixed.render([.user("Hi")], addGenerationPrompt: false) == "<|begin_of_text|><|start_header_id|>system"
            + "<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2030\n\n<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    }

    @Test func systemMessageIsFoldedWhereTheFormatHasNone() throws {
        let c: [ChatMessage] = [.system("You are terse."), .user("What is 2+2?")]
        let mistral = ChatTemplate(template: "{{ bos_token }}[INST] … [/INST]")
        #expect(mistral.family == .mistral)
        #expect(try mistral.render(c, addGenerationPrompt: true) == "<s>[INST] You are terse.\n\nWhat is 2+2? [/INST]")
        let gemma = ChatTemplate(template: "<start_of_turn>")
        #expect(gemma.family == .gemma)
        #expect(try gemma.render(c, addGenerationPrompt: true)
            == "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n")
        let llama2 = ChatTemplate(template: "[INST] <<SYS>>")
        #expect(llama2.family == .llama2)
        #expect(try llama2.render(c + [.assistant("4"), .user("And 3+3?")], addGenerationPrompt: true)
            == "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]")
        let llama3 = ChatTemplate(template: "<|start_header_id|>")
        #expect(llama3.rendersBOS)
        #expect(try llama3.render(c, addGenerationPrompt: true) == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            + "You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test func unknownTemplateFallsBackToChatMLWithWarning() throws {
        let unknown = ChatTemplate(template: "{% for m in messages %}### {{ m.role }}: {{ m.content }}{% endfor %}")
        #expect(unknown.family == .chatml)
        #expect(unknown.warning?.contains("unrecognised chat template") == true)
        #expect(unknown.defaultSystemMessage == nil)
        #expect(try unknown.render([.user("Hi")], addGenerationPrompt: true)
            == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let missing = ChatTemplate(template: nil)
        #expect(missing.family == .chatml)
        #expect(missing.warning?.contains("no chat template") == true)
    }

    @Test func defaultSystemMessageIsOnlyAPlainLiteral() {
        // Qwen-style: the newline is a Jinja escape inside the string literal.
        #expect(ChatTemplate.chatMLDefaultSystem(#"{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{{- '<|im_start|>system\nYou are Qwen.<|im_end|>\n' }}"#)
            == "You are Qwen.")
        #expect(ChatTemplate.chatMLDefaultSystem("{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'}}") == nil)
    }

    @Test func rejectsUnknownRolesAndEmptyConversations() {
        let t = ChatTemplate(template: "<|im_start|>")
        #expect(throws: ChatTemplateError("message 1 has role 'function'; expected system, user, assistant or tool")) {
            try t.render([.user("Hi"), ChatMessage(role: "function", content: "x")], addGenerationPrompt: true)
        }
        #expect(throws: ChatTemplateError.self) { try t.render([], addGenerationPrompt: true) }
    }

    @Test func renderedPromptTokenizesWithSpecialTokens() throws {
        guard let path = TestModel.path else { Issue.record("default model missing: run `make model`"); return }
        let file = try GGUFFile(path: path)
        let tok = try Tokenizer(gguf: file)
        let prompt = try ChatTemplate(gguf: file).render([.user("Hi")], addGenerationPrompt: true)
        let ids = tok.encode(prompt, addBOS: tok.addBOSByDefault, parseSpecial: true)
        #expect(ids.first == 1)
        #expect(ids.filter { $0 == 1 }.count == 3)
        #expect(ids.filter { $0 == 2 }.count == 2)
        #expect(tok.decode(ids) == prompt)
        #expect(try ChatTemplate(gguf: file).promptTokens([.user("Hi")], tokenizer: tok) == ids)
        // A template that writes BOS itself must not get a second one from a tokenizer that adds BOS.
        let spm = try tinySentencePiece()
        let inst = ChatTemplate(template: "[INST] <<SYS>>")
        let prompt2 = try inst.promptTokens([.user("hello")], tokenizer: spm)
        #expect(prompt2.filter { $0 == 1 }.count == 1 && prompt2.first == 1)
    }
}
