// POST /v1/responses: the Responses API as a chat job — instructions, input items and tools through the chat
// template, text.format and tool_choice through the chat constraints, the answer as output items (a message,
// function calls), streamed as typed events when asked.
import HTTPServer
import Scheduling
import Foundation

extension OpenAIService {
    func responses(_ request: HTTPRequest, _ sink: any ResponseSink) throws {
        let backend = try readyBackend()
        let body = try ResponsesRequest.decode(request.body, limits: .init(vocabularySize: backend.vocabularySize,
                                                                           samplingDefaults: backend.samplingDefaults))
        guard settings.serves(body.common.model) else { throw APIError.modelNotFound(body.common.model) }
        let priority = try priority(request, body: body.common.priority)
        let tools = body.tools
        let prompt = try OpenAIService.asInvalid(param: "input") {
            try backend.tokenize(chat: body.messages, tools: tools.active ? tools.tools : [])
        }
        let maxTokens: Int
        do {
            maxTokens = try OpenAIService.maxTokens(requested: body.maxOutputTokens, default: settings.defaultMaxTokens,
                                                    promptTokens: prompt.count, contextLength: backend.contextLength,
                                                    capacityTokens: backend.kvCapacityTokens)
        } catch var error as APIError {
            if error.param == "max_tokens" { error.param = "max_output_tokens" }
            if error.param == "messages" { error.param = "input" }
            throw error
        }
        let id = OpenAIService.newID("resp_")
        request.notes.set("id", id)
        request.notes.set("prompt_tokens", String(prompt.count))
        let settings = ResponseSettings(
            id: id, createdAt: Int(Date().timeIntervalSince1970), model: self.settings.servedModelName,
            instructions: body.instructions, maxOutputTokens: body.maxOutputTokens,
            temperature: body.common.sampling.temperature, topP: body.common.sampling.topP, echo: body.echo,
            parallelToolCalls: tools.parallel)
        let job = GenerationRequest(
            id: id, model: self.settings.servedModelName, promptTokens: prompt, maxTokens: maxTokens,
            sampling: body.common.sampling, priority: priority, queueTimeout: body.common.queueTimeout, kind: .response)
        var jobs = [CompletionRun.Job(request: job, index: 0, promptIndex: 0, promptText: "")]
        do {
            try constrain(&jobs, body.common, tools: tools, backend: backend)
        } catch var error as APIError {
            // The constraint speaks chat's field names; the client sent the Responses ones.
            switch error.param {
            case "max_tokens": error.param = "max_output_tokens"
            case "response_format": error.param = "text.format"
            default: break
            }
            error.message = error.message.replacingOccurrences(of: "'max_tokens'", with: "'max_output_tokens'")
                .replacingOccurrences(of: "response_format", with: "text.format")
            throw error
        }
        ResponseRun(settings: settings, messageID: OpenAIService.newID("msg_"), request: jobs[0].request,
                    stream: body.common.stream, sink: sink, backend: backend,
                    toolSyntax: tools.active ? backend.toolCallSyntax : nil, notes: request.notes).start()
    }
}
