// The OpenAI codec: request decoding and validation, max_tokens rules, response and SSE encoding.
import Scheduling
import Foundation
import Inference
import Testing
@testable import OpenAIAPI

private let limits = RequestDecoder.Limits(vocabularySize: 49152)

private func chat(_ json: String) throws -> ChatCompletionRequest {
    try RequestDecoder.decodeChat(Array(json.utf8), limits: limits)
}

private func completion(_ json: String) throws -> CompletionRequest {
    try RequestDecoder.decodeCompletion(Array(json.utf8), limits: limits)
}

/// The APIError a decode throws, or nil if it succeeded.
private func chatError(_ json: String) -> APIError? {
    do { _ = try chat(json); return nil } catch { return error as? APIError }
}

private func completionError(_ json: String) -> APIError? {
    do { _ = try completion(json); return nil } catch { return error as? APIError }
}

private func object(_ bytes: [UInt8]) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
}

@Suite struct OpenAICodecTests {
    @Test func decodesEveryChatParameter() throws {
        let r = try chat("""
        {"model":"m","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
          {"role":"assistant","content":null},{"role":"developer","content":"d"}],
         "max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"seed":-1,"stop":"\\n",
         "n":2,"presence_penalty":0.5,"frequency_penalty":-0.5,"repetition_penalty":1.1,"logit_bias":{"42":-100},
         "logprobs":true,"top_logprobs":3,"stream":true,"stream_options":{"include_usage":true},"user":"u",
         "priority":"high","queue_timeout":2.5,"unknown_field":{"x":1},"tools":[],"tool_choice":"none",
         "response_format":{"type":"text"}}
        """)
        #expect(r.messages == [
            ChatMessageInput(role: "system", content: "be brief"), ChatMessageInput(role: "user", content: "a\nb"),
            ChatMessageInput(role: "assistant", content: ""), ChatMessageInput(role: "system", content: "d"),
        ])
        #expect(r.common.model == "m")
        // One model is served, so `model` may be left out; the service reads "" as that one.
        #expect(try chat(#"{"messages":[{"role":"user","content":"x"}]}"#).common.model == "")
        #expect(r.common.maxTokens == 7)
        #expect(r.common.sampling.temperature == 0.5)
        #expect(r.common.sampling.topP == 0.9)
        #expect(r.common.sampling.topK == 40)
        #expect(r.common.sampling.minP == 0.05)
        #expect(r.common.sampling.seed == UInt64.max)
        #expect(r.common.sampling.presencePenalty == 0.5)
        #expect(r.common.sampling.frequencyPenalty == -0.5)
        #expect(r.common.sampling.repetitionPenalty == Float(1.1))
        #expect(r.common.sampling.logitBias == [42: -100])
        #expect(r.common.stop == ["\n"])
        #expect(r.common.n == 2)
        #expect(r.common.stream && r.common.includeUsage)
        #expect(r.common.priority == .high)
        #expect(r.common.queueTimeout == 2.5)
        #expect(r.logprobs && r.topLogprobs == 3)
    }

    @Test func maxCompletionTokensWins() throws {
        let r = try chat(#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9}"#)
        #expect(r.common.maxTokens == 9)
        #expect(r.common.sampling == SamplingDefaults.llamaCpp.parameters)
        #expect(r.common.priority == nil)
    }

    @Test func omittedSamplingFieldsTakeTheServerDefaultsAndExplicitZeroStaysGreedy() throws {
        let served = SamplingDefaults(temperature: 0.3, topK: 7, topP: 0.5, minP: 0.2, repetitionPenalty: 1.3)
        let limits = RequestDecoder.Limits(vocabularySize: 100, samplingDefaults: served)
        let bare = try RequestDecoder.decodeChat(Array(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.utf8),
                                                 limits: limits)
        #expect(bare.common.sampling.temperature == 0.3 && bare.common.sampling.topK == 7)
        #expect(bare.common.sampling.topP == 0.5 && bare.common.sampling.minP == 0.2)
        #expect(bare.common.sampling.repetitionPenalty == Float(1.3))
        let greedy = try RequestDecoder.decodeCompletion(
            Array(#"{"model":"m","prompt":"x","temperature":0,"top_k":0}"#.utf8), limits: limits)
        #expect(greedy.common.sampling.temperature == 0)
        #expect(greedy.common.sampling.topK == 0)
        // Fields the request leaves out still come from the server.
        #expect(greedy.common.sampling.topP == 0.5 && greedy.common.sampling.minP == 0.2)
    }

    @Test func chatErrorsNameTheField() {
        let base = #""model":"m","messages":[{"role":"user","content":"x"}]"#
        let cases: [(String, String?)] = [
            ("not json", nil),
            ("[1,2]", nil),
            (#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (#"{"model":"m"}"#, "messages"),
            (#"{"model":"m","messages":"hi"}"#, "messages"),
            (#"{"model":"m","messages":[]}"#, "messages"),
            (#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "messages[0].role"),
            (#"{"model":"m","messages":[{"role":"user"}]}"#, "messages[0].content"),
            (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#, "messages[0].content[0].type"),
            (#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#, "messages[0].tool_call_id"),
            (#"{"model":"m","messages":[{"role":"function","content":"x"}]}"#, "messages[0].role"),
            ("{\(base),\"temperature\":\"hot\"}", "temperature"),
            ("{\(base),\"temperature\":3}", "temperature"),
            ("{\(base),\"top_p\":0}", "top_p"),
            ("{\(base),\"max_tokens\":0}", "max_tokens"),
            ("{\(base),\"max_tokens\":1.5}", "max_tokens"),
            ("{\(base),\"n\":0}", "n"),
            ("{\(base),\"stop\":5}", "stop"),
            ("{\(base),\"logit_bias\":{\"abc\":1}}", "logit_bias"),
            ("{\(base),\"logit_bias\":{\"99999999\":1}}", "logit_bias"),
            ("{\(base),\"logit_bias\":{\"5\":101}}", "logit_bias"),
            ("{\(base),\"logprobs\":1}", "logprobs"),
            ("{\(base),\"top_logprobs\":2}", "top_logprobs"),
            ("{\(base),\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs"),
            ("{\(base),\"stream_options\":{\"include_usage\":true}}", "stream_options"),
            ("{\(base),\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage"),
            ("{\(base),\"tools\":[{\"type\":\"function\"}]}", "tools[0].function"),
            ("{\(base),\"tool_choice\":\"auto\"}", "tool_choice"),
            ("{\(base),\"response_format\":{\"type\":\"xml\"}}", "response_format.type"),
            ("{\(base),\"response_format\":{\"type\":\"json_schema\"}}", "response_format.json_schema"),
            ("{\(base),\"priority\":\"urgent\"}", "priority"),
            ("{\(base),\"queue_timeout\":0}", "queue_timeout"),
            ("{\(base),\"user\":5}", "user"),
            ("{\(base),\"cache_salt\":5}", "cache_salt"),
            ("{\(base),\"cache_salt\":\"\"}", "cache_salt"),
        ]
        for (json, param) in cases {
            let error = chatError(json)
            #expect(error?.status == 400, "\(json)")
            #expect(error?.type == "invalid_request_error", "\(json)")
            #expect(error?.param == param, "\(json)")
        }
        #expect(chatError("{\(base),\"functions\":[{\"name\":\"f\"}]}")?.message.contains("not supported") == true)
    }

    @Test func hostileBodiesAreRejectedNotFatal() {
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(chatError(deep)?.status == 400)
        #expect(chatError("{\"model\":\"m\",\"messages\":" + deep + "}")?.status == 400)
        #expect(chatError("\u{FEFF}{}")?.status == 400)
        #expect(RequestDecoderBytes.invalidUTF8().status == 400)
    }

    @Test func completionPromptsAndLogprobs() throws {
        var r = try completion(#"{"model":"m","prompt":"hello","logprobs":5,"echo":true,"max_tokens":0}"#)
        #expect(r.prompts == [.text("hello")])
        #expect(r.logprobs == 5)
        #expect(r.echo)
        #expect(r.common.maxTokens == 0)
        r = try completion(#"{"model":"m","prompt":["a","b"],"n":2}"#)
        #expect(r.prompts == [.text("a"), .text("b")])
        #expect(r.logprobs == nil)
        #expect(completionError(#"{"model":"m","prompt":"x","logprobs":6}"#)?.param == "logprobs")
        #expect(completionError(#"{"model":"m","prompt":"x","logprobs":true}"#)?.param == "logprobs")
        #expect(completionError(#"{"model":"m","prompt":[{"a":1}]}"#)?.param == "prompt")
        #expect(completionError(#"{"model":"m","prompt":[]}"#)?.param == "prompt")
        #expect(completionError(#"{"model":"m"}"#)?.param == "prompt")
        #expect(completionError(#"{"model":"m","prompt":"x","max_tokens":-1}"#)?.param == "max_tokens")
        #expect(completionError(#"{"model":"m","prompt":"x","echo":"yes"}"#)?.param == "echo")
    }

    @Test func tokenIDPromptsOneOrManyWithEveryBadIDNamedByPosition() throws {
        var r = try completion(#"{"model":"m","prompt":[1,2,49151]}"#)
        #expect(r.prompts == [.tokens([1, 2, 49151])])
        r = try completion(#"{"model":"m","prompt":[[5],[6,7]],"n":2}"#)
        #expect(r.prompts == [.tokens([5]), .tokens([6, 7])])
        let outside = completionError(#"{"model":"m","prompt":[1,49152]}"#)
        #expect(outside?.status == 400 && outside?.param == "prompt[1]" && outside?.code == "invalid_token_id")
        #expect(outside?.message.contains("49152") == true)
        #expect(completionError(#"{"model":"m","prompt":[[1],[2,-1]]}"#)?.param == "prompt[1][1]")
        #expect(completionError(#"{"model":"m","prompt":[[1],[]]}"#)?.param == "prompt[1]")
        #expect(completionError(#"{"model":"m","prompt":[1,2.5]}"#)?.param == "prompt[1]")
        #expect(completionError(#"{"model":"m","prompt":[1,"a"]}"#)?.param == "prompt[1]")
        #expect(completionError(#"{"model":"m","prompt":["a",[1]]}"#)?.param == "prompt[1]")
        #expect(completionError(#"{"model":"m","prompt":[[1],2]}"#)?.param == "prompt[1]")
    }

    @Test func maxTokensDefaultsAndContext() throws {
        // Chat default 512 and completions 16, both capped by the room the prompt leaves.
        #expect(try OpenAIService.maxTokens(requested: nil, default: 512, promptTokens: 100, contextLength: 2048) == 512)
        #expect(try OpenAIService.maxTokens(requested: nil, default: 512, promptTokens: 1800, contextLength: 2048) == 248)
        #expect(try OpenAIService.maxTokens(requested: nil, default: 16, promptTokens: 10, contextLength: 2048) == 16)
        // The default is capped by the whole KV cache too; an explicit number is left for the scheduler to judge.
        #expect(try OpenAIService.maxTokens(requested: nil, default: 512, promptTokens: 100, contextLength: 2048,
                                            capacityTokens: 256) == 156)
        #expect(try OpenAIService.maxTokens(requested: 512, default: 512, promptTokens: 100, contextLength: 2048,
                                            capacityTokens: 256) == 512)
        #expect(try OpenAIService.maxTokens(requested: 48, default: 16, promptTokens: 2000, contextLength: 2048) == 48)
        do {
            _ = try OpenAIService.maxTokens(requested: 100, default: 16, promptTokens: 2000, contextLength: 2048)
            Issue.record("expected context_length_exceeded")
        } catch let error as APIError {
            #expect(error.status == 400)
            #expect(error.code == "context_length_exceeded")
            #expect(error.message.contains("2048") && error.message.contains("2000") && error.message.contains("100"))
        }
        #expect(throws: APIError.self) {
            try OpenAIService.maxTokens(requested: nil, default: 16, promptTokens: 2048, contextLength: 2048)
        }
    }

    @Test func failuresMapToStatuses() {
        #expect(APIError.from(.queueFull(retryAfterSeconds: 3)).status == 429)
        #expect(APIError.from(.queueFull(retryAfterSeconds: 3)).headers["Retry-After"] == "3")
        #expect(APIError.from(.evicted(retryAfterSeconds: 0)).headers["Retry-After"] == "1")
        #expect(APIError.from(.queueTimeout(waitedSeconds: 1)).type == "queue_timeout")
        #expect(APIError.from(.queueTimeout(waitedSeconds: 1)).status == 503)
        #expect(APIError.from(.shuttingDown).status == 503)
        let tooLarge = APIError.from(.tooLarge(costBlocks: 300, capacityBlocks: 256))
        #expect(tooLarge.status == 400 && tooLarge.message.contains("300") && tooLarge.message.contains("256"))
        #expect(APIError.from(.engine("boom")).status == 500)
    }

    @Test func errorEnvelopeShape() {
        let body = object(OpenAICodec.errorJSON(.invalid("bad", param: "temperature")))
        let error = body["error"] as? [String: Any]
        #expect(error?["message"] as? String == "bad")
        #expect(error?["type"] as? String == "invalid_request_error")
        #expect(error?["param"] as? String == "temperature")
        #expect(error?["code"] is NSNull)
        let response = APIError.from(.queueFull(retryAfterSeconds: 2)).response
        #expect(response.status == 429)
        #expect(response.headers.contains { $0.0 == "Retry-After" && $0.1 == "2" })
    }

    @Test func chatResponseAndChunks() {
        let header = ResponseHeader(id: "chatcmpl-x", created: 1, model: "m", systemFingerprint: "fp")
        let token = GeneratedToken(token: 5, text: "Hi", logprob: TokenLogprob(token: 5, bytes: Array("Hi".utf8), logprob: -0.25),
                                   topLogprobs: [TokenLogprob(token: 5, bytes: Array("Hi".utf8), logprob: -0.25),
                                                 TokenLogprob(token: 6, bytes: [0xE2], logprob: -.infinity)])
        let lp = ChatTokenLogprob(token)!
        let full = object(OpenAICodec.json(ChatCompletionResponse(
            header: header, choices: [ChatChoice(index: 0, content: "Hi", logprobs: ChatLogprobs(content: [lp]), finishReason: "length")],
            usage: UsageBody(promptTokens: 3, completionTokens: 1))))
        #expect(full["object"] as? String == "chat.completion")
        #expect(full["system_fingerprint"] as? String == "fp")
        let choice = (full["choices"] as? [[String: Any]])?.first
        #expect((choice?["message"] as? [String: Any])?["role"] as? String == "assistant")
        #expect(choice?["finish_reason"] as? String == "length")
        let content = ((choice?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])?.first
        #expect(content?["token"] as? String == "Hi")
        #expect(content?["bytes"] as? [Int] == [72, 105])
        let tops = content?["top_logprobs"] as? [[String: Any]]
        #expect(tops?.count == 2)
        #expect(tops?.last?["logprob"] as? Double == -9999)
        let usage = full["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == 3 && usage?["completion_tokens"] as? Int == 1)
        #expect(usage?["total_tokens"] as? Int == 4)
        #expect((usage?["prompt_tokens_details"] as? [String: Int]) == ["cached_tokens": 0])

        let first = OpenAICodec.event(ChatCompletionChunk(header: header, choices: [ChatChunkChoice(index: 0, role: "assistant", content: "")],
                                                          includeUsage: true, usage: nil))
        let text = String(decoding: first, as: UTF8.self)
        #expect(text.hasPrefix("data: {") && text.hasSuffix("}\n\n"))
        let chunk = object(Array(first.dropFirst(6).dropLast(2)))
        #expect(chunk["object"] as? String == "chat.completion.chunk")
        #expect(chunk["usage"] is NSNull)
        let delta = ((chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])
        #expect(delta?["role"] as? String == "assistant")
        #expect((chunk["choices"] as? [[String: Any]])?.first?["finish_reason"] is NSNull)

        let last = object(OpenAICodec.json(ChatCompletionChunk(header: header, choices: [], includeUsage: true,
                                                               usage: UsageBody(promptTokens: 2, completionTokens: 3, cachedTokens: 2))))
        #expect((last["choices"] as? [Any])?.isEmpty == true)
        #expect((last["usage"] as? [String: Any])?["total_tokens"] as? Int == 5)
        #expect(((last["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Int])?["cached_tokens"] == 2)
        let plain = object(OpenAICodec.json(ChatCompletionChunk(header: header, choices: [], includeUsage: false, usage: nil)))
        #expect(plain["usage"] == nil)
        #expect(String(decoding: OpenAICodec.done, as: UTF8.self) == "data: [DONE]\n\n")
    }

    @Test func completionLogprobsShape() {
        var lp = CompletionLogprobs()
        lp.append(bytes: Array("Hello".utf8), logprob: nil, top: nil, offset: 0)
        lp.append(bytes: Array(" wörld".utf8), logprob: -1.5,
                  top: [TokenLogprob(token: 1, bytes: Array(" wörld".utf8), logprob: -1.5),
                        TokenLogprob(token: 2, bytes: Array(" there".utf8), logprob: -0.5)], offset: 5)
        let header = ResponseHeader(id: "cmpl-x", created: 1, model: "m", systemFingerprint: "fp")
        let body = object(OpenAICodec.json(CompletionResponse(
            header: header, choices: [CompletionChoice(index: 0, text: "Hello wörld", logprobs: lp, finishReason: "length")],
            usage: UsageBody(promptTokens: 2, completionTokens: 0))))
        #expect(body["object"] as? String == "text_completion")
        let logprobs = (body["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any]
        #expect(logprobs?["tokens"] as? [String] == ["Hello", " wörld"])
        let tokenLogprobs = logprobs?["token_logprobs"] as? [Any]
        #expect(tokenLogprobs?.first is NSNull)
        #expect(tokenLogprobs?.last as? Double == -1.5)
        let tops = logprobs?["top_logprobs"] as? [Any]
        #expect(tops?.first is NSNull)
        #expect((tops?.last as? [String: Double]) == [" wörld": -1.5, " there": -0.5])
        #expect(logprobs?["text_offset"] as? [Int] == [0, 5])
    }

    @Test func apiKeyComparison() {
        #expect(BearerAuthMiddleware.constantTimeEquals(Array("secret".utf8), Array("secret".utf8)))
        #expect(!BearerAuthMiddleware.constantTimeEquals(Array("secreT".utf8), Array("secret".utf8)))
        #expect(!BearerAuthMiddleware.constantTimeEquals(Array("secret1".utf8), Array("secret".utf8)))
        #expect(!BearerAuthMiddleware.constantTimeEquals([], Array("secret".utf8)))
        #expect(!BearerAuthMiddleware.constantTimeEquals([], []))
    }

    @Test func jobIDsAreUniquePerChoice() {
        let ids = (0..<4).map { OpenAIService.jobID("chatcmpl-abc", $0) }
        #expect(ids[0] == "chatcmpl-abc")
        #expect(Set(ids).count == 4)
        #expect(OpenAIService.newID("cmpl-").hasPrefix("cmpl-"))
        #expect(OpenAIService.newID("cmpl-") != OpenAIService.newID("cmpl-"))
    }
}

enum RequestDecoderBytes {
    static func invalidUTF8() -> APIError {
        do {
            _ = try RequestDecoder.decodeChat([0x7B, 0xFF, 0xFE, 0x7D], limits: limits)
            return APIError.invalid("unexpectedly decoded")
        } catch {
            return (error as? APIError) ?? APIError(status: 0, message: "", type: "")
        }
    }
}
