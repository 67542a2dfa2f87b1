// /v1/embeddings through the real routes with a hand-driven backend: the jobs it submits, the window that keeps a
// long input list out of the lot, the answer's shape and encodings, failures and disconnects.
import Foundation
import HTTPServer
import Scheduling
import TestSupport
import Testing
@testable import OpenAIAPI

private func post(_ backend: FakeBackend, _ body: String) -> RecordingSink {
    client(backend).execute("POST", "/v1/embeddings", headers: [("Content-Type", "application/json")], body: body)
}

private func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

private func finish(_ backend: FakeBackend, _ position: Int, _ vector: [Float], prompt: Int) {
    backend.emit(position, .embedding(vector))
    backend.emit(position, .finished(.stop, Usage(promptTokens: prompt, completionTokens: 0)))
}

@Suite struct EmbeddingRunTests {
    @Test func eachInputIsAPrefillOnlyJobAndTheAnswerKeepsInputOrder() throws {
        let backend = FakeBackend()
        let sink = post(backend, #"{"model":"tiny","input":["ab","xyz"]}"#)
        let jobs = backend.submitted
        try #require(jobs.count == 2)
        #expect(jobs.map(\.promptTokens) == [[97, 98], [120, 121, 122]])
        #expect(jobs.allSatisfy { $0.maxTokens == 0 && $0.embedding == .mean && $0.kind == .embedding })
        #expect(Set(jobs.map(\.id)).count == 2)
        finish(backend, 1, [0, 1, 0, 0], prompt: 3)
        #expect(sink.response == nil)
        finish(backend, 0, [0.5, 0.5, 0.5, 0.5], prompt: 2)
        #expect(sink.status == 200)
        #expect(sink.header("X-Request-Id") == jobs[0].id)
        let body = object(sink.text)
        #expect(body["object"] as? String == "list" && body["model"] as? String == "tiny")
        let data = body["data"] as? [[String: Any]] ?? []
        #expect(data.map { $0["index"] as? Int } == [0, 1])
        #expect(data.map { $0["object"] as? String } == ["embedding", "embedding"])
        #expect(data.map { $0["embedding"] as? [Double] } == [[0.5, 0.5, 0.5, 0.5], [0, 1, 0, 0]])
        #expect(body["usage"] as? [String: Int] == ["prompt_tokens": 5, "total_tokens": 5])
    }

    @Test func base64IsLittleEndianFloat32() {
        let backend = FakeBackend()
        let sink = post(backend, #"{"model":"tiny","input":"a","encoding_format":"base64"}"#)
        finish(backend, 0, [1, -2, 0.5, 0], prompt: 1)
        let data = (object(sink.text)["data"] as? [[String: Any]])?.first
        let bytes = Data(base64Encoded: data?["embedding"] as? String ?? "") ?? Data()
        #expect(Array(bytes) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0x3F, 0, 0, 0, 0])
    }

    @Test func aLongListGoesThroughAWindowOfJobs() {
        let backend = FakeBackend()
        let inputs = (0..<(EmbeddingRun.window + 3)).map { "\"x\($0)\"" }.joined(separator: ",")
        let sink = post(backend, #"{"model":"tiny","input":[\#(inputs)]}"#)
        #expect(backend.submitted.count == EmbeddingRun.window)
        finish(backend, 0, [1, 0, 0, 0], prompt: 2)
        #expect(backend.submitted.count == EmbeddingRun.window + 1)
        for i in 1..<(EmbeddingRun.window + 3) { finish(backend, i, [1, 0, 0, 0], prompt: 2) }
        #expect(backend.submitted.count == EmbeddingRun.window + 3)
        #expect((object(sink.text)["data"] as? [Any])?.count == EmbeddingRun.window + 3)
    }

    @Test func aFailureAnswersWithItsErrorAndCancelsTheRest() {
        let backend = FakeBackend(rejecting: [1: .queueFull(retryAfterSeconds: 2)])
        let sink = post(backend, #"{"model":"tiny","input":["a","b","c"]}"#)
        #expect(sink.status == 429)
        #expect(sink.header("Retry-After") == "2")
        #expect(backend.cancelled.sorted() == [backend.submitted[0].id])
        #expect(backend.submitted.count == 2)  // nothing more is submitted once the answer is an error
    }

    @Test func disconnectCancelsUnfinishedJobs() {
        let backend = FakeBackend()
        let sink = post(backend, #"{"model":"tiny","input":["a","b"]}"#)
        finish(backend, 0, [1, 0, 0, 0], prompt: 1)
        sink.close(completed: false)
        #expect(backend.cancelled == [backend.submitted[1].id])
        #expect(sink.response == nil)
    }

    @Test func badRequestsNameTheField() {
        for (body, param) in [(#"{"model":"tiny"}"#, "input"), (#"{"model":"tiny","input":""}"#, "input"),
                              (#"{"model":"tiny","input":["a",""]}"#, "input[1]"),
                              (#"{"model":"tiny","input":[1,300]}"#, "input[1]"),
                              (#"{"model":"tiny","input":"a","dimensions":8}"#, "dimensions"),
                              (#"{"model":"tiny","input":"a","encoding_format":"hex"}"#, "encoding_format"),
                              (#"{"model":"tiny","input":["a",[1]]}"#, "input[1]"),
                              (#"{"model":3,"input":"a"}"#, "model")] {
            let sink = post(FakeBackend(), body)
            #expect(sink.status == 400, "\(body)")
            #expect((object(sink.text)["error"] as? [String: Any])?["param"] as? String == param, "\(body)")
        }
        #expect(post(FakeBackend(), #"{"model":"tiny","input":"a","dimensions":4}"#).response == nil)  // accepted
        #expect(post(FakeBackend(), #"{"input":"a"}"#).response == nil)  // `model` left out: the one served
    }
}
