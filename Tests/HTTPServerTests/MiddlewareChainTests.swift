// Middleware without a socket: the order of the chain, the one place errors are caught, and the exchange
// records the metrics middleware reports (misses and refusals included).
import Foundation
import Locks
import Synchronization
import TestSupport
import Testing
@testable import HTTPServer

/// Notes its name on the way in, so a test can see the order the chain ran in.
private struct Trace: HTTPMiddleware {
    let name: String
    let seen: Shared<[String]>

    func handle(_ request: HTTPRequest, sink: any ResponseSink,
                next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        seen.value.withLock { $0.append(name) }
        try next(request, sink)
    }
}

/// A shareable home for a Mutex, which cannot be copied into closures itself.
private final class Shared<Value: Sendable>: Sendable {
    let value: Locked<Value>
    init(_ initial: Value) { value = Locked(initial) }
}

private struct Teapot: HTTPResponseError {
    var status: Int { 418 }
    var responseHeaders: [(String, String)] { [("Content-Type", "text/plain"), ("X-Why", "short and stout")] }
    var responseBody: [UInt8] { Array("teapot".utf8) }
}

private final class Records: Sendable {
    let all = Locked<[HTTPExchangeRecord]>([])
    var last: HTTPExchangeRecord? { all.withLock { $0.last } }
}

/// The server's side of a small answer: it is sent and the connection closed before `respond` returns.
private final class ClosesWhileResponding: ResponseSink {
    let inner = RecordingSink()

    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool {
        let accepted = inner.respond(response)
        inner.close(completed: true)
        return accepted
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool { inner.write(bytes) }
    func finish() { inner.finish() }
    func onClose(_ handler: @escaping @Sendable (Bool) -> Void) { inner.onClose(handler) }
    var isClientGone: Bool { inner.isClientGone }
}

@Suite struct MiddlewareChainTests {
    @Test func theStatusIsKnownWhenTheConnectionClosesInsideRespond() throws {
        let records = Records()
        let metrics = HTTPMetricsMiddleware { record in records.all.withLock { $0.append(record) } }
        try metrics.handle(HTTPRequest(method: "POST", path: "/v1/embeddings"), sink: ClosesWhileResponding()) { _, sink in
            sink.respond(.text(200, "ok"))
        }
        #expect(records.last.map { "\($0.status) \($0.completed)" } == "200 true")
    }

    @Test func routerWideRunsOutsideTheRoutesOwn() {
        let seen = Shared<[String]>([])
        var router = Router()
        router.add("GET", "/a", middleware: [Trace(name: "route1", seen: seen), Trace(name: "route2", seen: seen)]) { _, sink in
            seen.value.withLock { $0.append("handler") }
            sink.respond(.text(200, "a"))
        }
        router.use(Trace(name: "global", seen: seen))
        let sink = RouterTestClient(router: router).execute("GET", "/a")
        #expect(sink.text == "a")
        #expect(seen.value.withLock { $0 } == ["global", "route1", "route2", "handler"])
        // A miss still passes the router-wide middleware, never a route's.
        seen.value.withLock { $0 = [] }
        #expect(RouterTestClient(router: router).execute("GET", "/b").status == 404)
        #expect(seen.value.withLock { $0 } == ["global"])
    }

    @Test func selfRenderingErrorsAndRefusals() {
        var router = Router()
        router.add("GET", "/teapot") { _, _ in throw Teapot() }
        router.add("POST", "/json", consumes: "application/json") { _, sink in sink.respond(.text(200, "ok")) }
        router.add("GET", "/broken") { _, _ in throw CancellationError() }
        let client = RouterTestClient(router: router) { status, message in .text(status, "E \(message)") }
        var sink = client.execute("GET", "/teapot")
        #expect(sink.status == 418)
        #expect(sink.header("X-Why") == "short and stout")
        #expect(sink.text == "teapot")
        sink = client.execute("POST", "/json", headers: [("Content-Type", "text/plain")])
        #expect(sink.status == 415)
        #expect(sink.text == "E Content-Type must be application/json.")
        sink = client.execute("DELETE", "/json")
        #expect(sink.status == 405)
        #expect(sink.header("Allow") == "POST")
        sink = client.execute("GET", "/broken")
        #expect(sink.status == 500)
        #expect(sink.recorded.offered.count == 1)
    }

    @Test func metricsSeeEveryOutcome() {
        let records = Records()
        var router = Router()
        router.add("GET", "/items/{id}") { request, sink in sink.respond(.text(200, request.pathParameters["id"] ?? "")) }
        router.add("GET", "/teapot") { _, _ in throw Teapot() }
        router.add("GET", "/never") { _, _ in }
        router.use(HTTPMetricsMiddleware { record in records.all.withLock { $0.append(record) } })
        let client = RouterTestClient(router: router)

        var sink = client.execute("GET", "/items/7")
        #expect(records.last == nil)  // reported when the exchange closes, not at the head
        sink.close(completed: true)
        #expect(records.last.map { "\($0.handler) \($0.method) \($0.status) \($0.completed)" } == "/items/{id} GET 200 true")

        sink = client.execute("GET", "/teapot")
        sink.close(completed: true)
        #expect(records.last.map { "\($0.handler) \($0.status)" } == "/teapot 418")

        sink = client.execute("GET", "/nowhere")
        sink.close(completed: true)
        #expect(records.last.map { "\($0.handler) \($0.status)" } == "not_found 404")

        sink = client.execute("POST", "/teapot")
        sink.close(completed: true)
        #expect(records.last.map { "\($0.handler) \($0.status)" } == "method_not_allowed 405")

        sink = client.execute("GET", "/never")
        sink.close(completed: false)
        #expect(records.last.map { "\($0.handler) \($0.status) \($0.completed)" } == "/never 499 false")
        #expect(records.all.withLock { $0.allSatisfy { $0.seconds >= 0 } })
    }

    @Test func requestLogIsOneLineWithoutHeaders() {
        let lines = Shared<[String]>([])
        var router = Router()
        router.add("GET", "/x") { _, sink in sink.respond(.text(200, "x")) }
        router.use(RequestLogMiddleware(lines: { line in lines.value.withLock { $0.append(line) } }))
        let sink = RouterTestClient(router: router).execute("GET", "/x", headers: [("Authorization", "Bearer sekrit")])
        sink.close(completed: true)
        let logged = lines.value.withLock { $0 }
        #expect(logged.count == 1)
        #expect(logged.first?.hasPrefix("GET /x 200 ") == true)
        #expect(logged.first?.contains("sekrit") == false)
    }
}
