// Tool calls at the API layer: the 400s for malformed tools, choices and history; reading calls out of replies in
// each syntax; the whole answer and the streamed deltas through the real routes with a hand-driven backend.
import Foundation
import HTTPServer
import Inference
import Scheduling
import TestSupport
import Testing
@testable import OpenAIAPI

private let limits = RequestDecoder.Limits(vocabularySize: 49152)
private let base = #""model":"tiny","messages":[{"role":"user","content":"x"}]"#
private let weatherTool = #"{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}"#

private func decode(_ json: String) throws -> ChatCompletionRequest {
    try RequestDecoder.decodeChat(Array(json.utf8), limits: limits)
}

private func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

private func events(_ text: String) -> [[String: Any]] {
    text.components(separatedBy: "\n\n").compactMap { line in
        guard line.hasPrefix("data: {") else { return nil }
        return object(String(line.dropFirst(6)))
    }
}

@Suite struct ToolCallTests {
    @Test func toolsAndChoiceDecode() throws {
        let r = try decode("{\(base),\"tools\":[\(weatherTool)],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"parallel_tool_calls\":false}")
        #expect(r.tools.tools.map(\.name) == ["get_weather"])
        #expect(r.tools.choice == .function("get_weather"))
        #expect(r.tools.parallel == false)
        #expect(r.tools.active)
        #expect(try decode("{\(base),\"tools\":[\(weatherTool)]}").tools.choice == .auto)
        #expect(try decode("{\(base),\"tools\":[\(weatherTool)],\"tool_choice\":\"none\"}").tools.active == false)
        #expect(try decode("{\(base),\"tools\":[\(weatherTool)],\"tool_choice\":\"required\"}").tools.choice == .required)
        #expect(try decode("{\(base),\"tools\":[]}").tools.active == false)
        let history = try decode(#"{"model":"tiny","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"18C"}]}"#)
        #expect(history.messages[1].content == "")
        #expect(history.messages[1].toolCalls == [ChatToolCall(id: "call_1", name: "get_weather", arguments: #"{"city": "Paris"}"#)])
        #expect(history.messages[2].role == "tool")
        #expect(history.messages[2].toolCallID == "call_1")
    }

    @Test func malformedToolsAreRefusedByName() {
        let cases: [(String, String)] = [
            (#""tools":{"a":1}"#, "tools"),
            (#""tools":[5]"#, "tools[0]"),
            (#""tools":[{"type":"retrieval"}]"#, "tools[0].type"),
            (#""tools":[{"type":"function","function":{"description":"d"}}]"#, "tools[0].function.name"),
            (#""tools":[{"type":"function","function":{"name":"has space"}}]"#, "tools[0].function.name"),
            (#""tools":[{"type":"function","function":{"name":"f","description":5}}]"#, "tools[0].function.description"),
            ("\"tools\":[\(weatherTool),\(weatherTool)]", "tools[1].function.name"),
            ("\"tools\":[\(weatherTool),{\"type\":\"function\",\"function\":{\"name\":\"g\",\"parameters\":[1]}}]", "tools[1].function.parameters"),
            ("\"tools\":[\(weatherTool),{\"type\":\"function\",\"function\":{\"name\":\"g\",\"parameters\":{\"type\":\"string\"}}}]", "tools[1].function.parameters.type"),
            ("\"tools\":[\(weatherTool)],\"tool_choice\":\"always\"", "tool_choice"),
            ("\"tools\":[\(weatherTool)],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", "tool_choice.function.name"),
            ("\"tools\":[\(weatherTool)],\"tool_choice\":{\"type\":\"function\"}", "tool_choice.function.name"),
            ("\"tool_choice\":\"required\"", "tool_choice"),
            ("\"tools\":[\(weatherTool)],\"parallel_tool_calls\":\"yes\"", "parallel_tool_calls"),
            (#""functions":[{"name":"f"}]"#, "functions"),
        ]
        for (extra, param) in cases {
            do {
                _ = try decode("{\(base),\(extra)}")
                Issue.record("accepted: \(extra)")
            } catch let error as APIError {
                #expect(error.status == 400, "\(extra)")
                #expect(error.type == "invalid_request_error", "\(extra)")
                #expect(error.param == param, "\(extra): \(error.message)")
            } catch {
                Issue.record("\(error)")
            }
        }
        let history: [(String, String)] = [
            (#"{"role":"tool","content":"x"}"#, "messages[1].tool_call_id"),
            (#"{"role":"user","content":"x","tool_calls":[]}"#, "messages[1].tool_calls"),
            (#"{"role":"assistant","tool_calls":{"id":1}}"#, "messages[1].tool_calls"),
            (#"{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}"#, "messages[1].tool_calls[0].id"),
            (#"{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}"#, "messages[1].tool_calls[0].function.name"),
            (#"{"role":"assistant","function_call":{"name":"f"}}"#, "messages[1].function_call"),
        ]
        for (message, param) in history {
            #expect(throws: APIError.self) { try decode(#"{"model":"tiny","messages":[{"role":"user","content":"x"},\#(message)]}"#) }
            do { _ = try decode(#"{"model":"tiny","messages":[{"role":"user","content":"x"},\#(message)]}"#) } catch let e as APIError {
                #expect(e.param == param, "\(message)")
            } catch {}
        }
        // Completions take no tools.
        #expect(throws: APIError.self) {
            try RequestDecoder.decodeCompletion(Array("{\"model\":\"m\",\"prompt\":\"x\",\"tools\":[\(weatherTool)]}".utf8), limits: limits)
        }
    }

    @Test func parametersSchemasAreCompiledUnderEveryChoice() {
        let badKeyword = #"{"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{"x":{"type":"string","not":{"const":"a"}}}}}}"#
        let badRef = ##"{"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{"x":{"$ref":"#/$defs/missing"}}}}}"##
        for choice in ["", #","tool_choice":"auto""#, #","tool_choice":"none""#, #","tool_choice":"required""#] {
            for (tool, param) in [(badKeyword, "tools[1].function.parameters.properties.x.not"),
                                  (badRef, "tools[1].function.parameters.properties.x")] {
                do {
                    _ = try decode("{\(base),\"tools\":[\(weatherTool),\(tool)]\(choice)}")
                    Issue.record("accepted \(tool) with \(choice)")
                } catch let error as APIError {
                    #expect(error.status == 400)
                    #expect(error.param?.hasPrefix(param) == true, "\(choice): \(error.param ?? "nil") \(error.message)")
                } catch {
                    Issue.record("\(error)")
                }
            }
        }
    }

    @Test func callsAreReadInEachSyntax() {
        let hermes = ParsedReply("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
            + "<tool_call>\n{\"arguments\": {\"city\": \"Rome\"}, \"name\": \"get_weather\"}\n</tool_call>", syntax: .hermes)
        #expect(hermes.content == "Let me check.")
        #expect(hermes.calls.map(\.name) == ["get_weather", "get_weather"])
        #expect(hermes.calls.map(\.arguments) == [#"{"city": "Paris"}"#, #"{"city": "Rome"}"#])
        let only = ParsedReply("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", syntax: .hermes)
        #expect(only.content == nil)
        #expect(only.calls.map(\.arguments) == ["{}"])
        let llama = ParsedReply(#"{"name": "f", "parameters": {"n": 12}}"#, syntax: .llama3)
        #expect(llama.calls.map(\.arguments) == [#"{"n": 12}"#])
        #expect(llama.content == nil)
        let mistral = ParsedReply(#"[TOOL_CALLS] [{"name": "f", "arguments": {"a": [1, "]"]}}, {"name": "g", "arguments": {}}]"#, syntax: .mistral)
        #expect(mistral.calls.map(\.name) == ["f", "g"])
        #expect(mistral.calls.first?.arguments == #"{"a": [1, "]"]}"#)
        // No call, a call cut short, or a malformed one: the text is the content, as it was.
        for text in ["Paris is sunny.", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": ", "<tool_call>\n{\"nom\": 3}\n</tool_call>",
                     "{not json"] {
            #expect(ParsedReply(text, syntax: .hermes) == ParsedReply(content: text, calls: []), "\(text)")
        }
        #expect(ParsedReply("Sure: {\"name\": \"f\"}", syntax: .llama3).calls.isEmpty)
    }

    @Test func streamSendsTheNameThenArgumentFragmentsAndHoldsBackMarkers() {
        let reply = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par\\\"is\"}}\n</tool_call>"
        // Every split of the reply into pieces gives the same content, name and arguments.
        for size in [1, 2, 3, 7, 200] {
            var stream = ToolCallStream(syntax: .hermes)
            var deltas: [ToolCallStream.Delta] = []
            var i = reply.startIndex
            while i < reply.endIndex {
                let j = reply.index(i, offsetBy: size, limitedBy: reply.endIndex) ?? reply.endIndex
                deltas += stream.append(String(reply[i..<j]))
                i = j
            }
            deltas += stream.finish()
            var content = "", name: String?, arguments = ""
            for d in deltas {
                switch d {
                case .content(let s): content += s
                case .callStart(let index, let id, let n):
                    #expect(index == 0 && id.hasPrefix("call_") && name == nil)
                    name = n
                case .arguments(let index, let fragment):
                    #expect(index == 0 && name != nil)
                    arguments += fragment
                }
            }
            #expect(content == "Checking.", "size \(size)")
            #expect(name == "get_weather")
            #expect(arguments == #"{"city": "Par\"is"}"#)
            #expect(!content.contains("<"))
        }
        var text = ToolCallStream(syntax: .hermes)
        #expect(text.append("a <tool") == [.content("a")])
        #expect(text.append(" b") == [.content(" <tool b")])
        #expect(text.finish() == [])
    }

    @Test func wholeAnswerCarriesToolCallsAndNullContent() {
        let backend = FakeBackend()
        // `auto`: the scripted reply calls by itself (a forced call needs the real vocabulary's grammar masks).
        let sink = client(backend).execute("POST", "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                                           body: "{\(base),\"tools\":[\(weatherTool)],\"tool_choice\":\"auto\"}")
        #expect(backend.submitted.count == 1)
        for piece in ["<tool_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"] {
            backend.token(0, piece)
        }
        backend.emit(0, .finished(.stop, Usage(promptTokens: 2, completionTokens: 2)))
        #expect(sink.status == 200)
        let choice = (object(sink.text)["choices"] as? [[String: Any]])?.first
        #expect(choice?["finish_reason"] as? String == "tool_calls")
        let message = choice?["message"] as? [String: Any]
        #expect(message?["content"] is NSNull)
        let calls = message?["tool_calls"] as? [[String: Any]]
        #expect(calls?.count == 1)
        #expect((calls?.first?["id"] as? String)?.hasPrefix("call_") == true)
        #expect(calls?.first?["type"] as? String == "function")
        let function = calls?.first?["function"] as? [String: Any]
        #expect(function?["name"] as? String == "get_weather")
        #expect(function?["arguments"] as? String == #"{"city": "Paris"}"#)

        // Without tools the same text is just content.
        let plain = client(backend).execute("POST", "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                                            body: "{\(base)}")
        backend.token(1, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>")
        backend.emit(1, .finished(.stop, Usage(promptTokens: 2, completionTokens: 2)))
        let plainChoice = (object(plain.text)["choices"] as? [[String: Any]])?.first
        #expect(plainChoice?["finish_reason"] as? String == "stop")
        #expect((plainChoice?["message"] as? [String: Any])?["tool_calls"] == nil)
    }

    @Test func streamedDeltasHaveOpenAIsShape() {
        let backend = FakeBackend()
        let sink = client(backend).execute("POST", "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                                           body: "{\(base),\"stream\":true,\"tools\":[\(weatherTool)]}")
        backend.emit(0, .admitted)
        for piece in ["<tool_", "call>\n{\"name\": \"get_weather\", \"argu", "ments\": {\"city\"", ": \"Paris\"}}\n</tool_call>"] {
            backend.token(0, piece)
        }
        backend.emit(0, .finished(.stop, Usage(promptTokens: 2, completionTokens: 4)))
        let chunks = events(sink.text).compactMap { ($0["choices"] as? [[String: Any]])?.first }
        let deltas = chunks.compactMap { $0["delta"] as? [String: Any] }
        let calls = deltas.compactMap { ($0["tool_calls"] as? [[String: Any]])?.first }
        #expect(calls.count >= 2)
        #expect(calls.first?["index"] as? Int == 0)
        #expect((calls.first?["id"] as? String)?.hasPrefix("call_") == true)
        #expect(calls.first?["type"] as? String == "function")
        #expect((calls.first?["function"] as? [String: Any])?["name"] as? String == "get_weather")
        #expect((calls.first?["function"] as? [String: Any])?["arguments"] as? String == "")
        #expect(calls.dropFirst().allSatisfy { $0["id"] == nil && ($0["function"] as? [String: Any])?["name"] == nil })
        let arguments = calls.compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined()
        #expect(arguments == #"{"city": "Paris"}"#)
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == "")
        #expect(chunks.last?["finish_reason"] as? String == "tool_calls")
        #expect(sink.text.hasSuffix("data: [DONE]\n\n"))
    }
}

@Suite struct ForcedToolCallTests {
    @Test func aForcedCallWithoutAVocabularyToMaskIsRefusedNotLeftFree() {
        let sink = client(FakeBackend()).execute(
            "POST", "/v1/chat/completions", headers: [("Content-Type", "application/json")],
            body: "{\(base),\"tools\":[\(weatherTool)],\"tool_choice\":\"required\"}")
        #expect(sink.status == 400)
        #expect(sink.text.contains("tool_choice"))
    }
}
