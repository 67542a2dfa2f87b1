// The tokenizer routes through the real router with a hand-driven backend: llama-server's request and answer
// shapes, the /v1 aliases, and an out-of-vocabulary id named by its position.
import Foundation
import HTTPServer
import TestSupport
import Testing
@testable import OpenAIAPI

private func post(_ backend: FakeBackend, _ path: String, _ body: String) -> RecordingSink {
    client(backend).execute("POST", path, headers: [("Content-Type", "application/json")], body: body)
}

private func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

@Suite struct TokenizerRoutesTests {
    @Test func shapesAliasesAndErrors() {
        let backend = FakeBackend()
        #expect(object(post(backend, "/tokenize", #"{"content":"ab"}"#).text)["tokens"] as? [Int] == [97, 98])
        #expect(object(post(backend, "/v1/tokenize", #"{"content":"a","add_special":true}"#).text)["tokens"] as? [Int] == [1, 97])
        let pieces = object(post(backend, "/tokenize", #"{"content":"a","with_pieces":true}"#).text)["tokens"] as? [[String: Any]]
        #expect(pieces?.first?["id"] as? Int == 97 && pieces?.first?["piece"] as? String == "a")
        #expect(object(post(backend, "/detokenize", #"{"tokens":[104,105]}"#).text)["content"] as? String == "hi")
        let bad = post(backend, "/v1/detokenize", #"{"tokens":[1,999]}"#)
        #expect(bad.status == 400 && (object(bad.text)["error"] as? [String: Any])?["param"] as? String == "tokens[1]")
        let rendered = post(backend, "/apply-template", #"{"messages":[{"role":"developer","content":"s"},{"role":"user","content":"u"}]}"#)
        #expect(object(rendered.text)["prompt"] as? String == "system: s\nuser: u\n")
    }
}
