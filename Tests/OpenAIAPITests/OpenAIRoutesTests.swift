// The API routes over real loopback before a model is ready: health, auth, models, and JSON error bodies.
import HTTPServer
import Foundation
import TestSupport
import Testing
@testable import OpenAIAPI

private func startAPI(apiKey: String?) throws -> (HTTPServer, OpenAIService) {
    let service = OpenAIService(settings: .init(servedModelName: "tiny", apiKey: apiKey))
    var router = Router()
    service.register(on: &router)
    var configuration = HTTPServerConfiguration()
    configuration.port = 0
    configuration.maxBodyBytes = 4096
    let server = HTTPServer(configuration: configuration, router: router, errorResponse: APIError.httpErrorResponse)
    try server.start()
    return (server, service)
}

private func call(_ port: UInt16, _ method: String, _ path: String, headers: [String: String] = [:],
                  body: String = "") throws -> LoopbackResponse {
    let c = try LoopbackConnection(port: port)
    c.request(method, path, headers: headers, body: Array(body.utf8))
    return try c.readResponse()
}

private func errorObject(_ r: LoopbackResponse) -> [String: Any]? {
    ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any])?["error"] as? [String: Any]
}

@Suite(.serialized) struct OpenAIRoutesTests {
    @Test func healthFollowsThePhase() throws {
        let (server, service) = try startAPI(apiKey: nil)
        defer { server.stop() }
        var r = try call(server.port, "GET", "/health")
        #expect(r.status == 503)
        #expect(r.text == #"{"status":"loading"}"#)
        // Completions before the model is loaded: 503 in OpenAI's error shape, not a hang.
        r = try call(server.port, "POST", "/v1/chat/completions", headers: ["Content-Type": "application/json"],
                     body: #"{"model":"tiny","messages":[{"role":"user","content":"x"}]}"#)
        #expect(r.status == 503)
        #expect(errorObject(r)?["type"] as? String == "service_unavailable")
        service.stopping()
        r = try call(server.port, "GET", "/health")
        #expect(r.status == 503)
        #expect(r.text == #"{"status":"shutting_down"}"#)
    }

    @Test func authGuardsTheAPIButNotHealth() throws {
        let (server, _) = try startAPI(apiKey: "sekrit")
        defer { server.stop() }
        var r = try call(server.port, "GET", "/v1/models")
        #expect(r.status == 401)
        #expect(errorObject(r)?["code"] as? String == "invalid_api_key")
        r = try call(server.port, "GET", "/models", headers: ["Authorization": "Bearer nope"])
        #expect(r.status == 401)
        r = try call(server.port, "GET", "/v1/models", headers: ["Authorization": "Bearer sekrit"])
        #expect(r.status == 200)
        let list = (try JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
        let card = (list?["data"] as? [[String: Any]])?.first
        #expect(card?["id"] as? String == "tiny")
        #expect(card?["object"] as? String == "model")
        r = try call(server.port, "GET", "/v1/models/other", headers: ["Authorization": "Bearer sekrit"])
        #expect(r.status == 404)
        #expect(errorObject(r)?["code"] as? String == "model_not_found")
        r = try call(server.port, "GET", "/health")
        #expect(r.status == 503)  // open without a key (503 only because nothing is loaded here)
    }

    @Test func httpErrorsUseTheErrorShape() throws {
        let (server, _) = try startAPI(apiKey: nil)
        defer { server.stop() }
        var r = try call(server.port, "GET", "/v1/chat/completions")
        #expect(r.status == 405)
        #expect(errorObject(r)?["code"] as? String == "method_not_allowed")
        r = try call(server.port, "GET", "/v2/anything")
        #expect(r.status == 404)
        #expect(errorObject(r)?["type"] as? String == "invalid_request_error")
        r = try call(server.port, "POST", "/v1/completions", headers: ["Content-Type": "application/json"],
                     body: String(repeating: "x", count: 5000))
        #expect(r.status == 413)
        #expect(errorObject(r)?["code"] as? String == "request_too_large")
        r = try call(server.port, "POST", "/v1/completions", headers: ["Content-Type": "text/plain"], body: "{}")
        #expect(r.status == 415)
        #expect(errorObject(r)?["param"] is NSNull)
    }
}
