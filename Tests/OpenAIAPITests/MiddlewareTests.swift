// Auth as middleware on the API routes, and errors thrown by handlers rendered once, in the OpenAI shape.
import Foundation
import HTTPServer
import TestSupport
import Testing
@testable import OpenAIAPI

private struct Broken: Error {}

private func errorObject(_ sink: RecordingSink) -> [String: Any]? {
    ((try? JSONSerialization.jsonObject(with: Data(sink.body))) as? [String: Any])?["error"] as? [String: Any]
}

@Suite struct MiddlewareTests {
    @Test func authGuardsTheAPIRoutesOnly() {
        let c = client(FakeBackend(), apiKey: "sekrit")
        var sink = c.execute("GET", "/v1/models")
        #expect(sink.status == 401)
        #expect(errorObject(sink)?["code"] as? String == "invalid_api_key")
        sink = c.execute("GET", "/models", headers: [("Authorization", "Bearer nope")])
        #expect(sink.status == 401)
        sink = c.execute("GET", "/v1/models", headers: [("authorization", "bearer sekrit")])
        #expect(sink.status == 200)
        // Auth runs before the body is looked at.
        sink = c.execute("POST", "/v1/chat/completions", headers: [("Content-Type", "application/json")], body: "{")
        #expect(sink.status == 401)
        sink = c.execute("GET", "/health")
        #expect(sink.status == 200)
    }

    @Test func noKeyNoAuth() {
        let sink = client(FakeBackend(), apiKey: nil).execute("GET", "/v1/models")
        #expect(sink.status == 200)
    }

    @Test func thrownAPIErrorIsRenderedOnce() {
        let sink = client(FakeBackend(), apiKey: nil).execute("GET", "/v1/models/other")
        #expect(sink.recorded.offered.count == 1)
        #expect(sink.status == 404)
        #expect(sink.header("Content-Type") == "application/json")
        #expect(errorObject(sink)?["code"] as? String == "model_not_found")
        #expect(errorObject(sink)?["param"] as? String == "model")
    }

    @Test func anyOtherErrorIsA500InTheSameShape() {
        let c = client(FakeBackend(), apiKey: nil) { router, service in
            router.add("GET", "/v1/broken", middleware: service.apiMiddleware) { _, _ in throw Broken() }
        }
        let sink = c.execute("GET", "/v1/broken")
        #expect(sink.recorded.offered.count == 1)
        #expect(sink.status == 500)
        #expect(errorObject(sink)?["type"] as? String == "server_error")
        #expect(errorObject(sink)?["param"] is NSNull)
        // Never the error's own text, which may name internals.
        #expect(errorObject(sink)?["message"] as? String == "The server failed to handle the request.")
    }

    @Test func aThrowAfterAnsweringKeepsTheFirstAnswer() {
        let c = client(FakeBackend(), apiKey: nil) { router, _ in
            router.add("GET", "/v1/late") { _, sink in
                sink.respond(.text(200, "ok"))
                throw APIError.invalid("too late")
            }
        }
        let sink = c.execute("GET", "/v1/late")
        #expect(sink.status == 200)
        #expect(sink.text == "ok")
    }

    @Test func decodeErrorsStayBadRequests() {
        let sink = client(FakeBackend(), apiKey: nil).execute("POST", "/v1/completions", headers: [("Content-Type", "application/json")],
                                               body: #"{"model":"tiny"}"#)
        #expect(sink.status == 400)
        #expect(errorObject(sink)?["param"] as? String == "prompt")
    }
}
