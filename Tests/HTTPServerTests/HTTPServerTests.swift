// The HTTP layer over real loopback sockets: routing, limits, streaming from another thread, disconnects.
import Foundation
import Locks
import TestSupport
import Testing
@testable import HTTPServer

/// Shared by handlers under test: what they saw and the responders they parked.
final class Probe: Sendable {
    let closes = Locked<[Bool]>([])
    let parked = Locked<[any ResponseSink]>([])
    func closed(_ completed: Bool) { closes.withLock { $0.append(completed) } }
}

private func makeServer(maxBody: Int = 1024, threads: Int = 2, timeout: Int = 60, probe: Probe) throws -> HTTPServer {
    var router = Router()
    router.add("GET", "/hello") { _, responder in
        responder.respond(.text(200, "hello"))
    }
    router.add("POST", "/echo", consumes: "application/json") { request, responder in
        responder.respond(.json(200, request.body))
    }
    router.add("GET", "/items/{id}") { request, responder in
        responder.respond(.text(200, "item \(request.pathParameters["id"] ?? "?") q=\(request.query["q"] ?? "")"))
    }
    router.add("GET", "/later") { _, responder in
        // Answer from another thread after the access handler has returned (connection suspended meanwhile).
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { responder.respond(.text(200, "later")) }
    }
    router.add("GET", "/stream") { request, responder in
        let count = Int(request.query["n"] ?? "5") ?? 5
        responder.respond(HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")], body: .stream))
        Thread.detachNewThread {
            for i in 0..<count {
                usleep(2_000)
                responder.write(Array("data: \(i)\n\n".utf8))
            }
            responder.finish()
        }
    }
    router.add("GET", "/park") { _, responder in
        responder.onClose { probe.closed($0) }
        probe.parked.withLock { $0.append(responder) }
    }
    router.add("GET", "/park-stream") { _, responder in
        responder.onClose { probe.closed($0) }
        responder.respond(HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")], body: .stream))
        responder.write(Array("data: first\n\n".utf8))
        probe.parked.withLock { $0.append(responder) }
    }
    var configuration = HTTPServerConfiguration()
    configuration.port = 0
    configuration.maxBodyBytes = maxBody
    configuration.threads = threads
    configuration.connectionTimeout = timeout
    let server = HTTPServer(configuration: configuration, router: router)
    try server.start()
    return server
}

@Suite(.serialized) struct HTTPServerTests {
    @Test func routesAndRejects() throws {
        let probe = Probe()
        let server = try makeServer(probe: probe)
        defer { server.stop() }
        #expect(server.port != 0)

        var c = try LoopbackConnection(port: server.port)
        c.request("GET", "/hello")
        var r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "hello")

        c = try LoopbackConnection(port: server.port)
        c.request("GET", "/items/42?q=a%20b")
        r = try c.readResponse()
        #expect(r.text == "item 42 q=a b")

        c = try LoopbackConnection(port: server.port)
        c.request("POST", "/hello", body: Array("{}".utf8))
        r = try c.readResponse()
        #expect(r.status == 405)
        #expect(r.headers["allow"] == "GET")

        c = try LoopbackConnection(port: server.port)
        c.request("GET", "/nope")
        r = try c.readResponse()
        #expect(r.status == 404)

        c = try LoopbackConnection(port: server.port)
        c.request("POST", "/echo", headers: ["Content-Type": "text/plain"], body: Array("{}".utf8))
        r = try c.readResponse()
        #expect(r.status == 415)

        c = try LoopbackConnection(port: server.port)
        c.request("POST", "/echo", headers: ["Content-Type": "application/json; charset=utf-8"], body: Array("{\"a\":1}".utf8))
        r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "{\"a\":1}")
    }

    @Test func bodyLimits() throws {
        let probe = Probe()
        let server = try makeServer(maxBody: 300_000, probe: probe)
        defer { server.stop() }

        // A body that arrives in many upload calls is reassembled byte for byte.
        let big = (0..<250_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var c = try LoopbackConnection(port: server.port)
        c.request("POST", "/echo", headers: ["Content-Type": "application/json"], body: big)
        var r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.body == big)

        // Declared too large: refused from the headers alone.
        c = try LoopbackConnection(port: server.port)
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 300001\r\n\r\n")
        r = try c.readResponse()
        #expect(r.status == 413)

        // Chunked upload without a length crosses the limit while streaming in.
        c = try LoopbackConnection(port: server.port)
        var upload = Array("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        for _ in 0..<4 { upload += Array("186a0\r\n".utf8) + piece + Array("\r\n".utf8) }
        upload += Array("0\r\n\r\n".utf8)
        c.send(upload)
        r = try c.readResponse()
        #expect(r.status == 413)
    }

    @Test func deferredAndStreamedResponses() throws {
        let probe = Probe()
        let server = try makeServer(probe: probe)
        defer { server.stop() }

        var c = try LoopbackConnection(port: server.port)
        c.request("GET", "/later")
        var r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "later")

        c = try LoopbackConnection(port: server.port)
        c.request("GET", "/stream?n=20")
        r = try c.readResponse()
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "text/event-stream")
        #expect(r.text == (0..<20).map { "data: \($0)\n\n" }.joined())
    }

    @Test func manyConcurrentStreamsOnTwoThreads() throws {
        let probe = Probe()
        let server = try makeServer(threads: 2, probe: probe)
        defer { server.stop() }
        let count = 200
        var connections: [LoopbackConnection] = []
        for _ in 0..<count {
            let c = try LoopbackConnection(port: server.port)
            c.request("GET", "/park-stream")
            connections.append(c)
        }
        // Every connection is parked mid-stream at once; none holds an MHD thread.
        #expect(eventually { probe.parked.withLock { $0.count } == count })
        let responders = probe.parked.withLock { $0 }
        DispatchQueue.global().async {
            for round in 0..<3 {
                for responder in responders { responder.write(Array("data: \(round)\n\n".utf8)) }
            }
            for responder in responders { responder.finish() }
        }
        let expected = "data: first\n\n" + (0..<3).map { "data: \($0)\n\n" }.joined()
        var good = 0
        for c in connections {
            let r = try c.readResponse()
            if r.status == 200 && r.text == expected { good += 1 }
        }
        #expect(good == count)
        #expect(eventually { probe.closes.withLock { $0.filter { $0 }.count } == count })
    }

    @Test func disconnectWhileParkedIsNoticed() throws {
        let probe = Probe()
        let server = try makeServer(probe: probe)
        defer { server.stop() }
        let c = try LoopbackConnection(port: server.port)
        c.request("GET", "/park")
        #expect(eventually { probe.parked.withLock { $0.count } == 1 })
        #expect(probe.closes.withLock { $0.isEmpty })
        c.hangUp()
        // The watchdog sees the closed peer and the close handler reports an incomplete exchange.
        #expect(eventually { probe.closes.withLock { $0 } == [false] })
        let responder = probe.parked.withLock { $0[0] }
        #expect(responder.isClientGone)
        #expect(!responder.respond(.text(200, "too late")))
        #expect(eventually { server.openExchanges == 0 })
    }

    @Test func disconnectMidStreamIsNoticed() throws {
        let probe = Probe()
        let server = try makeServer(probe: probe)
        defer { server.stop() }
        let c = try LoopbackConnection(port: server.port)
        c.request("GET", "/park-stream")
        let (status, _) = try c.readHead()
        #expect(status == 200)
        #expect(try c.readChunk().map { String(decoding: $0, as: UTF8.self) } == "data: first\n\n")
        c.hangUp()
        #expect(eventually { probe.closes.withLock { $0 } == [false] })
        let responder = probe.parked.withLock { $0[0] }
        #expect(!responder.write(Array("data: more\n\n".utf8)))
    }

    @Test func stopWithParkedConnections() throws {
        let probe = Probe()
        let server = try makeServer(probe: probe)
        let c = try LoopbackConnection(port: server.port)
        c.request("GET", "/park")
        #expect(eventually { probe.parked.withLock { $0.count } == 1 })
        server.stop()
        #expect(probe.closes.withLock { $0 } == [false])
    }

    @Test func idleTimeoutSparesParkedRequests() throws {
        let probe = Probe()
        let server = try makeServer(timeout: 1, probe: probe)
        defer { server.stop() }
        // An idle connection that never sends a request is dropped by the timeout...
        let idle = try LoopbackConnection(port: server.port)
        var byte: UInt8 = 0
        #expect(recv(idle.fd, &byte, 1, 0) == 0)
        // ...but a request parked waiting for its answer (a queued job) is not.
        let c = try LoopbackConnection(port: server.port)
        c.request("GET", "/park")
        #expect(eventually { probe.parked.withLock { $0.count } == 1 })
        usleep(2_500_000)
        #expect(probe.closes.withLock { $0.isEmpty })
        probe.parked.withLock { $0[0] }.respond(.text(200, "finally"))
        let r = try c.readResponse()
        #expect(r.status == 200 && r.text == "finally")
    }

    @Test func routerResolution() {
        var router = Router()
        router.add("GET", "/v1/models") { _, _ in }
        router.add("POST", "/v1/chat/completions") { _, _ in }
        router.add("GET", "/v1/jobs/{id}") { _, _ in }
        if case .matched(let label, let parameters, _, _) = router.resolve(method: "GET", path: "/v1/jobs/abc") {
            #expect(label == "/v1/jobs/{id}")
            #expect(parameters == ["id": "abc"])
        } else {
            Issue.record("expected a match")
        }
        if case .methodNotAllowed(let allowed) = router.resolve(method: "GET", path: "/v1/chat/completions/") {
            #expect(allowed == ["POST"])
        } else {
            Issue.record("expected 405")
        }
        if case .notFound = router.resolve(method: "GET", path: "/v1/jobs") {} else { Issue.record("expected 404") }
        #expect(Router.accepts("application/json; charset=utf-8", required: "application/json"))
        #expect(!Router.accepts("text/plain", required: "application/json"))
        #expect(Router.accepts(nil, required: "application/json"))
    }
}
