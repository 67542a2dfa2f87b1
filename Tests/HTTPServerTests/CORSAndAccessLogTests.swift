// CORS without a socket (preflight answered before a route's own checks, headers on answers and thrown errors,
// nothing for other origins) and the access log's entry carrying what the handler noted.
import Foundation
import Locks
import TestSupport
import Testing
@testable import HTTPServer

/// Stands in for an auth check: refuses anything without a key.
private struct NeedsKey: HTTPMiddleware {
    func handle(_ request: HTTPRequest, sink: any ResponseSink,
                next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        guard request.headers["authorization"] != nil else { throw HTTPRefusal(status: 401, message: "no key") }
        try next(request, sink)
    }
}

private final class Entries: Sendable {
    let value = Locked<[AccessLogEntry]>([])
}

@Suite struct CORSAndAccessLogTests {
    private func client(_ origins: [String]) -> RouterTestClient {
        var router = Router()
        router.add("POST", "/v1/x", middleware: [NeedsKey()]) { _, sink in sink.respond(.text(200, "ok")) }
        router.use(CORSMiddleware(allowedOrigins: origins))
        return RouterTestClient(router: router)
    }

    @Test func preflightIsAnsweredWithoutAKey() {
        let sink = client(["https://app.example"]).execute("OPTIONS", "/v1/x", headers: [
            ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization")])
        #expect(sink.status == 204)
        #expect(sink.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(sink.header("Access-Control-Allow-Headers") == "authorization")
        #expect(sink.header("Vary") == "Origin")
    }

    @Test func answersAndErrorsToAnAllowedOriginCarryTheHeaderOthersDoNot() {
        let c = client(["https://app.example"])
        let ok = c.execute("POST", "/v1/x", headers: [("Origin", "https://app.example"), ("Authorization", "k")])
        #expect(ok.status == 200 && ok.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(ok.header("Access-Control-Expose-Headers")?.contains("X-Request-Id") == true)
        let refused = c.execute("POST", "/v1/x", headers: [("Origin", "https://app.example")])
        #expect(refused.status == 401 && refused.header("Access-Control-Allow-Origin") == "https://app.example")
        let other = c.execute("POST", "/v1/x", headers: [("Origin", "https://evil.example"), ("Authorization", "k")])
        #expect(other.status == 200 && other.header("Access-Control-Allow-Origin") == nil)
        let otherPreflight = c.execute("OPTIONS", "/v1/x", headers: [("Origin", "https://evil.example"),
                                                                     ("Access-Control-Request-Method", "POST")])
        #expect(otherPreflight.status == 405)
        let any = client(["*"]).execute("POST", "/v1/x", headers: [("Origin", "http://x:1"), ("Authorization", "k")])
        #expect(any.header("Access-Control-Allow-Origin") == "*")
    }

    @Test func theAccessLogCarriesTheHandlersNotes() {
        let entries = Entries()
        var router = Router()
        router.add("POST", "/v1/job") { request, sink in
            request.notes.set("id", "job-1")
            request.notes.set("prompt_tokens", "12")
            request.notes.set("id", "job-2")
            sink.respond(.text(201, "ok"))
        }
        router.use(RequestLogMiddleware { entry in entries.value.withLock { $0.append(entry) } })
        let sink = RouterTestClient(router: router).execute("POST", "/v1/job", headers: [("Authorization", "Bearer s3cret")])
        sink.close(completed: true)
        let logged = entries.value.withLock { $0 }
        #expect(logged.count == 1)
        let fields = logged.first?.fields.map { "\($0.0)=\($0.1)" } ?? []
        #expect(Array(fields.prefix(6)) == ["method=POST", "path=/v1/job", "status=201", "route=/v1/job", "id=job-2",
                                           "prompt_tokens=12"])
        #expect(fields.last?.hasPrefix("total_ms=") == true)
        #expect(!fields.joined().contains("s3cret"))
    }
}
