// /v1/responses through the real router with a hand-driven backend: the response object, the typed event
// stream in the client's order, the chat messages the input becomes, and refusals.
import Foundation
import HTTPServer
import Scheduling
import TestSupport
import Testing
@testable import OpenAIAPI

private func post(_ backend: FakeBackend, _ path: String, _ body: String) -> RecordingSink {
    client(backend).execute("POST", path, headers: [("Content-Type", "application/json")], body: body)
}

private func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// (event name, data object) for each `event:` + `data:` block of a typed SSE body.
private func typedEvents(_ sink: RecordingSink) -> [(String, [String: Any])] {
    sink.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
        let lines = block.components(separatedBy: "\n")
        let name = lines.first.map { String($0.dropFirst("event: ".count)) } ?? ""
        return (name, object(String(lines.last?.dropFirst("data: ".count) ?? "")))
    }
}

@Suite struct ResponseRunTests {
    @Test func wholeResponseObject() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses",
                        #"{"model":"tiny","input":"hi","instructions":"be kind","max_output_tokens":5,"temperature":0}"#)
        let job = backend.submitted.first
        // Instructions become the system message, ahead of the input.
        #expect(job?.promptTokens == Array("be kindhi".utf8).map(Int32.init))
        #expect(job?.kind == .response && job?.maxTokens == 5 && job?.sampling.temperature == 0)
        backend.token(0, "Hel")
        backend.token(0, "lo")
        backend.emit(0, .finished(.stop, Usage(promptTokens: 9, completionTokens: 2)))
        #expect(sink.status == 200)
        let body = object(sink.text)
        #expect(body["object"] as? String == "response" && body["status"] as? String == "completed")
        #expect((body["id"] as? String)?.hasPrefix("resp_") == true && body["id"] as? String == job?.id)
        #expect(body["instructions"] as? String == "be kind" && body["max_output_tokens"] as? Int == 5)
        #expect(body["incomplete_details"] is NSNull && body["store"] as? Bool == false)
        let message = (body["output"] as? [[String: Any]])?.first
        #expect(message?["type"] as? String == "message" && message?["role"] as? String == "assistant")
        let part = (message?["content"] as? [[String: Any]])?.first
        #expect(part?["type"] as? String == "output_text" && part?["text"] as? String == "Hello")
        let usage = body["usage"] as? [String: Any]
        #expect(usage?["input_tokens"] as? Int == 9 && usage?["output_tokens"] as? Int == 2)
        #expect(usage?["total_tokens"] as? Int == 11)
        #expect((usage?["input_tokens_details"] as? [String: Int])?["cached_tokens"] == 0)
    }

    @Test func lengthMakesAnIncompleteResponse() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":"hi","max_output_tokens":1}"#)
        backend.token(0, "a")
        backend.emit(0, .finished(.length, Usage(promptTokens: 2, completionTokens: 1)))
        let body = object(sink.text)
        #expect(body["status"] as? String == "incomplete")
        #expect((body["incomplete_details"] as? [String: String])?["reason"] == "max_output_tokens")
    }

    @Test func streamedEventsInTheClientsOrder() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"stream":true}"#)
        backend.emit(0, .admitted)
        backend.token(0, "Hel")
        backend.token(0, "")
        backend.token(0, "lo")
        backend.emit(0, .finished(.stop, Usage(promptTokens: 2, completionTokens: 3)))
        #expect(sink.header("Content-Type") == "text/event-stream")
        #expect(sink.recorded.finished)
        let events = typedEvents(sink)
        #expect(events.map(\.0) == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
            "response.content_part.done", "response.output_item.done", "response.completed",
        ])
        #expect(events.allSatisfy { $0.1["type"] as? String == $0.0 })
        #expect(events.map { $0.1["sequence_number"] as? Int } == Array(0..<10))
        #expect(events[4].1["delta"] as? String == "Hel" && events[5].1["delta"] as? String == "lo")
        #expect(events[6].1["text"] as? String == "Hello")
        let itemID = ((events[2].1["item"] as? [String: Any])?["id"] as? String) ?? "?"
        #expect(events[3...8].allSatisfy { ($0.1["item_id"] as? String ?? itemID) == itemID })
        let created = events[0].1["response"] as? [String: Any]
        #expect(created?["status"] as? String == "in_progress" && (created?["output"] as? [Any])?.isEmpty == true)
        #expect((events[9].1["response"] as? [String: Any])?["status"] as? String == "completed")
    }

    @Test func aFailureMidStreamIsAnErrorEvent() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":"hi","stream":true}"#)
        backend.emit(0, .admitted)
        backend.emit(0, .failed(.shuttingDown))
        let last = typedEvents(sink).last
        #expect(last?.0 == "error" && last?.1["code"] as? String == "shutting_down")
        #expect((last?.1["error"] as? [String: Any])?["type"] as? String == "service_unavailable")
        #expect(sink.recorded.finished)
    }

    @Test func disconnectCancelsTheJob() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":"hi","stream":true}"#)
        backend.emit(0, .admitted)
        sink.close(completed: false)
        #expect(backend.cancelled == [backend.submitted[0].id])
    }

    @Test func aReplyWithACallIsAFunctionCallItem() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":"hi","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],"parallel_tool_calls":false}"#)
        backend.token(0, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")
        backend.emit(0, .finished(.stop, Usage(promptTokens: 2, completionTokens: 9)))
        let body = object(sink.text)
        #expect(body["status"] as? String == "completed" && body["parallel_tool_calls"] as? Bool == false)
        #expect((body["tools"] as? [[String: Any]])?.first?["name"] as? String == "get_weather")
        let output = body["output"] as? [[String: Any]] ?? []
        #expect(output.count == 1)
        #expect(output.first?["type"] as? String == "function_call" && output.first?["name"] as? String == "get_weather")
        #expect(output.first?["arguments"] as? String == #"{"city": "Paris"}"#)
        #expect((output.first?["call_id"] as? String)?.hasPrefix("call_") == true)
        #expect((output.first?["id"] as? String)?.hasPrefix("fc_") == true && output.first?["status"] as? String == "completed")
    }

    @Test func aStreamedCallSendsItsItemAndArgumentEvents() {
        let backend = FakeBackend()
        let sink = post(backend, "/v1/responses", #"{"model":"tiny","input":"hi","stream":true,"tools":[{"type":"function","name":"f"}]}"#)
        backend.emit(0, .admitted)
        for piece in ["Sure.", " <tool", "_call>\n{\"name\": \"f\", ", "\"arguments\": {\"a\"", ": 1}}\n</tool_call>"] {
            backend.token(0, piece)
        }
        backend.emit(0, .finished(.stop, Usage(promptTokens: 2, completionTokens: 5)))
        let events = typedEvents(sink)
        let names = events.map(\.0)
        #expect(names.first == "response.created" && names.last == "response.completed")
        #expect(names.filter { $0 == "response.output_item.added" }.count == 2)
        #expect(names.filter { $0 == "response.output_item.done" }.count == 2)
        let added = events.filter { $0.0 == "response.output_item.added" }.map { ($0.1["output_index"] as? Int, ($0.1["item"] as? [String: Any])?["type"] as? String) }
        #expect(added.map(\.0) == [0, 1] && added.map(\.1) == ["message", "function_call"])
        let deltas = events.filter { $0.0 == "response.function_call_arguments.delta" }.compactMap { $0.1["delta"] as? String }
        #expect(deltas.joined() == #"{"a": 1}"#)
        let done = events.first { $0.0 == "response.function_call_arguments.done" }?.1
        #expect(done?["arguments"] as? String == #"{"a": 1}"# && done?["output_index"] as? Int == 1)
        #expect(events.first { $0.0 == "response.output_text.done" }?.1["text"] as? String == "Sure.")
        let final = events.last?.1["response"] as? [String: Any]
        let output = final?["output"] as? [[String: Any]] ?? []
        #expect(output.map { $0["type"] as? String } == ["message", "function_call"])
        #expect(output.last?["call_id"] as? String == (events.first { $0.0 == "response.output_item.added" && $0.1["output_index"] as? Int == 1 }?.1["item"] as? [String: Any])?["call_id"] as? String)
    }

    @Test func functionCallItemsBecomeTheChatHistory() throws {
        let r = try ResponsesRequest.decode(Array(#"{"model":"m","input":[{"role":"user","content":"w?"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call","call_id":"c2","name":"g","arguments":"{\"x\":1}"},{"type":"function_call_output","call_id":"c1","output":"18C"},{"type":"function_call_output","call_id":"c2","output":{"ok":true}}]}"#.utf8),
                                            limits: .init(vocabularySize: 100))
        #expect(r.messages.map(\.role) == ["user", "assistant", "tool", "tool"])
        #expect(r.messages[1].toolCalls.map(\.id) == ["c1", "c2"] && r.messages[1].toolCalls[1].arguments == #"{"x":1}"#)
        #expect(r.messages[2].toolCallID == "c1" && r.messages[2].content == "18C")
        #expect(r.messages[3].toolCallID == "c2" && r.messages[3].content.contains("true"))
    }

    @Test func refusalsNameTheField() {
        for (body, param) in [(#"{"model":"tiny","input":"x","store":true}"#, "store"),
                              (#"{"model":"tiny","input":"x","previous_response_id":"resp_1"}"#, "previous_response_id"),
                              (#"{"model":"tiny","input":"x","text":{"format":{"type":"json_schema"}}}"#, "text.format.schema"),
                              (#"{"model":"tiny","input":"x","text":{"format":{"type":"xml"}}}"#, "text.format.type"),
                              (#"{"model":"tiny","input":"x","text":{"format":{"type":"json_schema","name":"a","schema":{"type":"object","not":{}}}}}"#, "text.format.schema.not"),
                              (#"{"model":"tiny","input":"x","tools":[{"type":"web_search"}]}"#, "tools[0].type"),
                              (#"{"model":"tiny","input":"x","tools":[{"type":"function"}]}"#, "tools[0].name"),
                              (#"{"model":"tiny","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"a":{"not":{}}}}}]}"#, "tools[0].parameters.properties.a.not"),
                              (#"{"model":"tiny","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}"#, "tool_choice.name"),
                              (#"{"model":"tiny","input":"x","tool_choice":"required"}"#, "tool_choice"),
                              (#"{"model":"tiny","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#, "input[0].call_id"),
                              (#"{"model":"tiny","input":[{"type":"function_call_output","call_id":"c"}]}"#, "input[0].output"),
                              (#"{"model":"tiny","input":[{"type":"reasoning"}]}"#, "input[0].type"),
                              (#"{"model":"tiny","input":[{"role":"tool","content":"x"}]}"#, "input[0].role"),
                              (#"{"model":"tiny","input":7}"#, "input")] {
            let sink = post(FakeBackend(), "/v1/responses", body)
            #expect(sink.status == 400, "\(body)")
            #expect((object(sink.text)["error"] as? [String: Any])?["param"] as? String == param, "\(body)")
        }
        let stored = post(FakeBackend(), "/v1/responses", #"{"model":"tiny","input":"x","store":true}"#)
        #expect(((object(stored.text)["error"] as? [String: Any])?["message"] as? String)?.contains("no conversation state") == true)
        // store false and an empty tools list are fine.
        #expect(post(FakeBackend(), "/v1/responses", #"{"model":"tiny","input":"x","store":false,"tools":[]}"#).response == nil)
    }
}
