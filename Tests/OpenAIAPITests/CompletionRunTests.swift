// CompletionRun through the real routes, with a hand-driven backend and a recording sink: what the client gets
// for streams and whole answers, n > 1, echo, failures before and after the stream started, and disconnects.
import Foundation
import HTTPServer
import Scheduling
import TestSupport
import Testing
@testable import OpenAIAPI

private func post(_ client: RouterTestClient, _ path: String, _ body: String) -> RecordingSink {
    client.execute("POST", path, headers: [("Content-Type", "application/json")], body: body)
}

private func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

private func choices(_ text: String) -> [[String: Any]] { object(text)["choices"] as? [[String: Any]] ?? [] }

private let usage = Usage(promptTokens: 2, completionTokens: 2)

@Suite struct CompletionRunTests {
    @Test func chatWholeAnswerWithTwoChoices() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/chat/completions",
                        #"{"model":"tiny","n":2,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(backend.submitted.count == 2)
        #expect(sink.response == nil)  // nothing before the jobs end
        backend.token(0, "He")
        backend.token(1, "Yo")
        backend.token(0, "y")
        backend.emit(1, .finished(.length, usage))
        #expect(sink.response == nil)
        backend.emit(0, .finished(.stop, usage))
        #expect(sink.status == 200)
        #expect(sink.recorded.offered.count == 1)
        let body = object(sink.text)
        let id = body["id"] as? String ?? ""
        #expect(sink.header("X-Request-Id") == id)
        #expect(backend.submitted.map(\.id) == [id, id + "-1"])
        let texts = choices(sink.text).map { ($0["message"] as? [String: Any])?["content"] as? String }
        #expect(texts == ["Hey", "Yo"])
        #expect(choices(sink.text).map { $0["finish_reason"] as? String } == ["stop", "length"])
        let counted = body["usage"] as? [String: Any]
        // One prompt shared by both choices: counted once.
        #expect(counted?["prompt_tokens"] as? Int == 2)
        #expect(counted?["completion_tokens"] as? Int == 4)
        #expect((counted?["prompt_tokens_details"] as? [String: Int])?["cached_tokens"] == 0)
    }

    @Test func cachedTokensAreReportedOnceAndSaltReachesTheJob() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions",
                        #"{"model":"tiny","prompt":["p","q"],"n":2,"cache_salt":"tenant"}"#)
        #expect(backend.submitted.count == 4)
        #expect(backend.submitted.allSatisfy { $0.cacheSalt == "tenant" })
        // Prompt 0's choices found 32 and 16 tokens cached; the prompt counted once is cached only as far as both.
        backend.emit(0, .finished(.length, Usage(promptTokens: 40, completionTokens: 1, cachedTokens: 32)))
        backend.emit(1, .finished(.length, Usage(promptTokens: 40, completionTokens: 1, cachedTokens: 16)))
        backend.emit(2, .finished(.length, Usage(promptTokens: 20, completionTokens: 1, cachedTokens: 16)))
        backend.emit(3, .finished(.length, Usage(promptTokens: 20, completionTokens: 1, cachedTokens: 16)))
        let counted = object(sink.text)["usage"] as? [String: Any]
        #expect(counted?["prompt_tokens"] as? Int == 60)
        #expect((counted?["prompt_tokens_details"] as? [String: Int])?["cached_tokens"] == 32)
    }

    @Test func chatStreamWithUsage() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/chat/completions",
                        #"{"model":"tiny","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#)
        backend.emit(0, .admitted)
        #expect(sink.status == 200)
        #expect(sink.header("Content-Type") == "text/event-stream")
        backend.token(0, "Hi")
        backend.emit(0, .finished(.stop, usage))
        let events = sink.events
        #expect(events.count == 5)  // role, token, finish, usage, [DONE]
        #expect(events.last == "[DONE]")
        let role = choices(events[0]).first?["delta"] as? [String: Any]
        #expect(role?["role"] as? String == "assistant")
        #expect((choices(events[1]).first?["delta"] as? [String: Any])?["content"] as? String == "Hi")
        #expect(object(events[1])["usage"] is NSNull)
        #expect(choices(events[2]).first?["finish_reason"] as? String == "stop")
        #expect((object(events[3])["usage"] as? [String: Any])?["total_tokens"] as? Int == 4)
        #expect(((object(events[3])["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Int])?["cached_tokens"] == 0)
        #expect(sink.recorded.finished)
    }

    @Test func completionEchoWithLogprobsAndNoNewTokens() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions",
                        #"{"model":"tiny","prompt":"ab","max_tokens":0,"echo":true,"logprobs":1}"#)
        #expect(backend.submitted.first?.promptLogprobs == true)
        let a = TokenLogprob(token: 97, bytes: [97], logprob: -1)
        let b = TokenLogprob(token: 98, bytes: [98], logprob: -0.5)
        backend.emit(0, .admitted)
        backend.emit(0, .promptLogprobs([nil, PromptTokenLogprob(token: b, top: [a])]))
        backend.emit(0, .finished(.length, Usage(promptTokens: 2, completionTokens: 0)))
        #expect(sink.status == 200)
        let choice = choices(sink.text).first ?? [:]
        #expect(choice["text"] as? String == "ab")
        #expect(choice["finish_reason"] as? String == "length")
        let logprobs = choice["logprobs"] as? [String: Any]
        #expect(logprobs?["tokens"] as? [String] == ["a", "b"])
        #expect(logprobs?["text_offset"] as? [Int] == [0, 1])
        let tokenLogprobs = logprobs?["token_logprobs"] as? [Any]
        #expect(tokenLogprobs?.first is NSNull)
        #expect(tokenLogprobs?.last as? Double == -0.5)
    }

    @Test func completionEchoStreamWithoutLogprobs() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions",
                        #"{"model":"tiny","prompt":"ab","max_tokens":1,"echo":true,"stream":true}"#)
        backend.emit(0, .admitted)
        backend.token(0, "c")
        backend.emit(0, .finished(.length, usage))
        let texts = sink.events.dropLast().map { choices($0).first?["text"] as? String }
        #expect(texts == ["ab", "c", ""])
        #expect(sink.events.last == "[DONE]")
    }

    @Test func failureAfterTheStreamStartedIsAnErrorEvent() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/chat/completions",
                        #"{"model":"tiny","n":2,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        backend.emit(0, .admitted)
        backend.token(0, "Hi")
        backend.emit(0, .failed(.engine("boom")))
        let events = sink.events
        #expect(events.suffix(2).first.map { (object($0)["error"] as? [String: Any])?["code"] as? String } == "engine_error")
        #expect(events.last == "[DONE]")
        #expect(sink.recorded.finished)
        #expect(sink.recorded.offered.count == 1)  // the stream's head only: no second answer
        // The other choice's job must not run on for nobody.
        #expect(backend.cancelled == [backend.submitted[1].id])
    }

    @Test func rejectionBeforeTheStreamIsAPlainHTTPError() {
        let backend = FakeBackend(rejecting: [0: .queueFull(retryAfterSeconds: 3)])
        let sink = post(client(backend), "/v1/chat/completions",
                        #"{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(sink.status == 429)
        #expect(sink.header("Retry-After") == "3")
        #expect(sink.header("Content-Type") == "application/json")
        #expect((object(sink.text)["error"] as? [String: Any])?["code"] as? String == "queue_full")
        #expect(sink.recorded.writes.isEmpty)
    }

    @Test func disconnectCancelsEveryUnfinishedJob() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions",
                        #"{"model":"tiny","prompt":["a","b"],"n":2,"stream":true}"#)
        #expect(backend.submitted.count == 4)
        backend.emit(0, .admitted)
        backend.emit(2, .finished(.stop, usage))
        sink.close(completed: false)
        let unfinished = [0, 1, 3].map { backend.submitted[$0].id }
        #expect(backend.cancelled.sorted() == unfinished.sorted())
        // A cancel after the client left writes nothing more.
        #expect(!sink.events.contains { $0.contains("cancelled") })
    }

    @Test func tokenIDPromptsAreFedAsSentAndEchoedAsText() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions",
                        #"{"model":"tiny","prompt":[[104,105],[111]],"n":2,"echo":true,"max_tokens":1}"#)
        // Two prompts × n 2, in OpenAI's order: prompt 0's choices first. No BOS is added to ids.
        #expect(backend.submitted.map(\.promptTokens) == [[104, 105], [104, 105], [111], [111]])
        for i in 0..<4 { backend.emit(i, .finished(.length, Usage(promptTokens: i < 2 ? 2 : 1, completionTokens: 0))) }
        #expect(sink.status == 200)
        #expect(choices(sink.text).map { $0["index"] as? Int } == [0, 1, 2, 3])
        #expect(choices(sink.text).map { $0["text"] as? String } == ["hi", "hi", "o", "o"])
        #expect((object(sink.text)["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 3)
        let bad = post(client(FakeBackend()), "/v1/completions", #"{"model":"tiny","prompt":[[1],[2,256]]}"#)
        #expect(bad.status == 400)
        #expect((object(bad.text)["error"] as? [String: Any])?["param"] as? String == "prompt[1][1]")
    }

    @Test func completedExchangeCancelsNothing() {
        let backend = FakeBackend()
        let sink = post(client(backend), "/v1/completions", #"{"model":"tiny","prompt":"a"}"#)
        backend.emit(0, .finished(.stop, usage))
        sink.close(completed: true)
        #expect(backend.cancelled.isEmpty)
    }
}
