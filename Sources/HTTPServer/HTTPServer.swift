// The libmicrohttpd daemon: request intake, body limits, routing, queuing responses and streams,
// and the suspended-connection watchdog. MHD calls back through the global functions at the bottom.
import CHttpd
import Foundation
import Locks
import Synchronization

public struct HTTPServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; read it back from `HTTPServer.port`.
    public var port: UInt16 = 8080
    /// MHD worker threads, each with its own epoll loop; connections never block them.
    public var threads: Int = 2
    public var connectionLimit: Int = 1024
    /// Most connections one client address may hold; 0 is no limit. It keeps one address from filling
    /// `connectionLimit`. Behind a proxy every client shares the proxy's address, so raise it or set 0 there.
    public var connectionsPerAddress: Int = 256
    /// Seconds an idle connection may hold a slot (suspended connections are exempt).
    public var connectionTimeout: Int = 60
    /// Seconds a client has to deliver a whole request, headers and body: a client dripping bytes resets the idle
    /// timeout, never this one.
    public var requestReadTimeout: Int = 10
    /// Request-body bytes all uploads together may buffer; an upload that finds no room gets 503 with Retry-After.
    public var maxBufferedBodyBytes: Int = 64 << 20
    /// Request line + headers beyond this get 431 with the API's error body.
    public var maxHeaderBytes: Int = 32 * 1024
    public var maxBodyBytes: Int = 1 << 20
    public var listenBacklog: Int = 512
    /// How often suspended connections are checked for a client that left.
    public var watchdogInterval: Duration = .milliseconds(100)

    public init() {}
}

public struct HTTPServerError: Error, CustomStringConvertible {
    public var description: String
}

public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    /// Routing, middleware and error rendering; the daemon only feeds it requests and sinks.
    let responder: RouterResponder

    // Set in start() and cleared in stop(), both called from one controlling thread.
    private var daemon: OpaquePointer?
    private var boundPort: UInt16 = 0
    private let live = Locked<[ObjectIdentifier: Exchange]>([:])
    private let running = Atomic<Bool>(false)
    private var watchdog: Thread?
    private let watchdogDone = DispatchSemaphore(value: 0)
    let deadlines: ReadDeadlines
    let bodyBudget: BodyBudget

    /// `errorResponse` renders the HTTP layer's own refusals (404, 405, 413, 415, 431) and unrenderable errors (500).
    public init(configuration: HTTPServerConfiguration, router: Router,
                errorResponse: @escaping @Sendable (Int, String) -> HTTPResponse = RouterResponder.plainError) {
        self.configuration = configuration
        self.responder = RouterResponder(router: router, errorResponse: errorResponse)
        deadlines = ReadDeadlines(readTimeout: .seconds(configuration.requestReadTimeout),
                                  idleTimeout: .seconds(configuration.connectionTimeout))
        bodyBudget = BodyBudget(limit: configuration.maxBufferedBodyBytes)
    }

    /// Connections cut off for not delivering their request within the read timeout.
    public var connectionsCut: Int { deadlines.cut }

    /// Request-body bytes currently held by uploads in progress.
    public var bufferedBodyBytes: Int { bodyBudget.inUse }

    public var port: UInt16 { boundPort }

    /// Connections currently open (requests not yet completed).
    public var openExchanges: Int { live.withLock { $0.count } }

    public func start() throws {
        var flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ITC.rawValue
        let address = try SocketAddress(host: configuration.host, port: configuration.port)
        if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        let context = Unmanaged.passUnretained(self).toOpaque()
        let started: OpaquePointer? = address.withSockaddr { sockaddr in
            valet_mhd_start(
                UInt32(flags), configuration.port, sockaddr,
                valetAccessHandler, context,
                valetRequestCompleted, context,
                valetConnectionEvent, context,
                UInt32(configuration.connectionLimit), UInt32(max(0, configuration.connectionsPerAddress)),
                UInt32(configuration.connectionTimeout),
                HTTPServer.connectionPoolBytes(maxHeaderBytes: configuration.maxHeaderBytes),
                UInt32(max(1, configuration.threads)),
                UInt32(configuration.listenBacklog))
        }
        guard let started else {
            throw HTTPServerError(description: "cannot listen on \(configuration.host):\(configuration.port) (address in use or not available)")
        }
        daemon = started
        boundPort = valet_mhd_bound_port(started)
        running.store(true, ordering: .sequentiallyConsistent)
        let thread = Thread { [self] in watchdogLoop() }
        thread.name = "valet-http-watchdog"
        thread.start()
        watchdog = thread
    }

    /// Stop accepting new connections; open ones carry on.
    public func quiesce() {
        guard let daemon else { return }
        let fd = MHD_quiesce_daemon(daemon)
        if fd >= 0 { close(fd) }
    }

    /// Resume every parked connection as gone, then stop the daemon. Call after streams had their grace.
    public func stop() {
        guard let daemon else { return }
        if running.exchange(false, ordering: .sequentiallyConsistent) {
            watchdogDone.wait()
        }
        for exchange in live.withLock({ Array($0.values) }) { exchange.markPeerGone() }
        // Resumes are handled asynchronously by MHD's threads; give them a moment to run before teardown.
        var waited = 0
        while openExchanges > 0 && waited < 50 {
            usleep(10_000)
            waited += 1
        }
        MHD_stop_daemon(daemon)
        self.daemon = nil
    }

    // MARK: watchdog

    private func watchdogLoop() {
        let interval = configuration.watchdogInterval
        let micros = UInt32(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        while running.load(ordering: .sequentiallyConsistent) {
            usleep(micros)
            checkSuspended()
            deadlines.cutExpired()
        }
        watchdogDone.signal()
    }

    /// A suspended connection is invisible to MHD's own I/O, so a client that leaves while its job is
    /// queued or between tokens would go unnoticed; poll those sockets for a closed peer.
    func checkSuspended() {
        let candidates = live.withLock { map in
            map.values.filter { $0.fd >= 0 && $0.suspendedFor != nil }
        }
        guard !candidates.isEmpty else { return }
        var fds = candidates.map { pollfd(fd: $0.fd, events: Int16(POLLIN) | VALET_POLLRDHUP, revents: 0) as pollfd }
        let ready = poll(&fds, nfds_t(fds.count), 0)
        guard ready > 0 else { return }
        for (index, entry) in fds.enumerated() where entry.revents != 0 {
            let hangup: Int16 = Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL) | VALET_POLLRDHUP
            var gone = entry.revents & hangup != 0
            if !gone, entry.revents & Int16(POLLIN) != 0 {
                var byte: UInt8 = 0
                let n = recv(entry.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            }
            if gone { candidates[index].markPeerGone() }
        }
    }

    // MARK: MHD callbacks (entered from the global functions)

    func access(connection: OpaquePointer, url: String, method: String,
                uploadData: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>,
                context: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> MHD_Result {
        guard let raw = context.pointee else {
            let headers = HTTPServer.values(connection, .HEADER_KIND)
            let exchange = Exchange(
                connection: connection, fd: valet_mhd_connection_fd(connection), method: method, path: url,
                headers: HTTPHeaders(headers), query: Dictionary(HTTPServer.values(connection, .GET_ARGUMENT_KIND),
                                                                 uniquingKeysWith: { first, _ in first }))
            context.pointee = Unmanaged.passRetained(exchange).toOpaque()
            live.withLock { $0[ObjectIdentifier(exchange)] = exchange }
            if HTTPServer.headerBytes(method: method, url: url, headers: headers) > configuration.maxHeaderBytes {
                exchange.bodyTooLarge = true  // whatever body follows is discarded unread
                exchange.dispatched = true
                return refuse(exchange, HTTPRefusal(
                    status: 431, message: "Request headers exceed the limit of \(configuration.maxHeaderBytes) bytes."))
            }
            // Refuse an oversized body before reading any of it (and before 100-continue).
            if let length = exchange.headers["content-length"].flatMap({ Int($0) }), length > configuration.maxBodyBytes {
                exchange.bodyTooLarge = true
                exchange.dispatched = true
                return refuse(exchange, tooLarge)
            }
            if let length = exchange.headers["content-length"].flatMap({ Int($0) }), length > 0 {
                // Reserved whole, before any of it is read, so the refusal can come before 100-continue too.
                guard bodyBudget.reserve(length) else {
                    exchange.bodyTooLarge = true
                    exchange.dispatched = true
                    return refuse(exchange, overBudget)
                }
                exchange.reservedBytes = length
                exchange.body.reserveCapacity(length)
            }
            return .YES
        }
        let exchange = Unmanaged<Exchange>.fromOpaque(raw).takeUnretainedValue()
        let size = uploadSize.pointee
        if size > 0 {
            if !exchange.bodyTooLarge, exchange.body.count + size > configuration.maxBodyBytes {
                exchange.bodyTooLarge = true
                exchange.body = []
            }
            // A chunked upload (no Content-Length) takes its share of the budget as it grows, 64 KiB at a time.
            if !exchange.bodyTooLarge, exchange.body.count + size > exchange.reservedBytes {
                let more = max(64 << 10, exchange.body.count + size - exchange.reservedBytes)
                if bodyBudget.reserve(more) {
                    exchange.reservedBytes += more
                } else {
                    exchange.bodyTooLarge = true
                    exchange.overBudget = true
                    exchange.body = []
                }
            }
            if exchange.bodyTooLarge {
                // Without a Content-Length MHD won't let us answer mid-upload; drop the excess for a while,
                // then hang up rather than read an unbounded body.
                exchange.discardedBytes += size
                if exchange.discardedBytes > 4 * configuration.maxBodyBytes { return .NO }
            } else if let uploadData {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
                    exchange.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size))
                }
            }
            uploadSize.pointee = 0
            return .YES
        }
        if !exchange.dispatched {
            exchange.dispatched = true
            if exchange.bodyTooLarge {
                return refuse(exchange, exchange.overBudget ? overBudget : tooLarge)
            }
            dispatch(exchange)
        }
        return proceed(exchange)
    }

    private func proceed(_ exchange: Exchange) -> MHD_Result {
        switch exchange.nextAction() {
        case .queue(let response): return queue(response, on: exchange)
        case .suspended: return .YES
        case .close: return .NO
        }
    }

    /// MHD keeps the request line and headers in the connection's memory pool and answers a pool overflow with its
    /// own HTML 431. The pool is sized at twice the header limit (plus room for MHD's buffers) so a request just over
    /// the limit still reaches `access`, which answers in the API's error format; only one beyond twice the limit
    /// meets MHD's page.
    static func connectionPoolBytes(maxHeaderBytes: Int) -> Int {
        2 * maxHeaderBytes + 16 * 1024
    }

    /// The request's head as it came over the wire: request line and "Name: value\r\n" lines.
    static func headerBytes(method: String, url: String, headers: [(String, String)]) -> Int {
        headers.reduce(method.utf8.count + url.utf8.count + 12) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
    }

    private var overBudget: HTTPRefusal {
        HTTPRefusal(status: 503, message: "The server is receiving too many request bodies at once; retry shortly.",
                    headers: [("Retry-After", "1")])
    }

    private var tooLarge: HTTPRefusal {
        HTTPRefusal(status: 413, message: "Request body exceeds the limit of \(configuration.maxBodyBytes) bytes.")
    }

    private func request(for exchange: Exchange) -> HTTPRequest {
        var request = HTTPRequest(method: exchange.method, path: exchange.path, query: exchange.query,
                                  headers: exchange.headers, body: exchange.body)
        request.received = exchange.started
        return request
    }

    private func dispatch(_ exchange: Exchange) {
        let request = request(for: exchange)
        exchange.body = []
        settleBody(of: exchange)
        responder.respond(to: request, sink: ExchangeSink(exchange: exchange))
    }

    /// Refused before routing, yet through the router-wide middleware so metrics and logs count it. The answer is
    /// given synchronously, so it can be queued at once.
    private func refuse(_ exchange: Exchange, _ refusal: HTTPRefusal) -> MHD_Result {
        settleBody(of: exchange)
        responder.refuse(request(for: exchange), refusal, sink: ExchangeSink(exchange: exchange))
        return proceed(exchange)
    }

    /// The request has been read as far as it will be: its body leaves the budget and its read deadline ends.
    private func settleBody(of exchange: Exchange) {
        bodyBudget.release(exchange.reservedBytes)
        exchange.reservedBytes = 0
        deadlines.received(exchange.connection)
    }

    /// MHD thread: hand a response to MHD (a copied buffer, or a reader over the exchange's stream).
    private func queue(_ response: HTTPResponse, on exchange: Exchange) -> MHD_Result {
        let mhdResponse: OpaquePointer?
        switch response.body {
        case .bytes(let bytes):
            exchange.state.withLock { $0.headQueued = true }
            mhdResponse = bytes.withUnsafeBytes { raw in
                MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress), .RESPMEM_MUST_COPY)
            }
        case .stream:
            let context = Unmanaged.passRetained(exchange).toOpaque()
            mhdResponse = MHD_create_response_from_callback(VALET_MHD_SIZE_UNKNOWN, 16 * 1024, valetStreamReader, context, valetStreamFree)
            if mhdResponse == nil { Unmanaged<Exchange>.fromOpaque(context).release() }
        }
        guard let mhdResponse else { return .NO }
        for (name, value) in response.headers {
            _ = MHD_add_response_header(mhdResponse, name, value)
        }
        let result = MHD_queue_response(exchange.connection, UInt32(response.status), mhdResponse)
        MHD_destroy_response(mhdResponse)
        return result
    }

    func completed(context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, code: MHD_RequestTerminationCode) {
        guard let context, let raw = context.pointee else { return }
        context.pointee = nil
        let exchange = Unmanaged<Exchange>.fromOpaque(raw).takeRetainedValue()
        live.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(exchange)) }
        bodyBudget.release(exchange.reservedBytes)
        exchange.reservedBytes = 0
        deadlines.answered(exchange.connection)
        exchange.complete(ok: code == .REQUEST_TERMINATED_COMPLETED_OK)
    }

    func connectionEvent(_ connection: OpaquePointer, _ event: MHD_ConnectionNotificationCode) {
        switch event {
        case .CONNECTION_NOTIFY_STARTED: deadlines.opened(connection, fd: valet_mhd_connection_fd(connection))
        default: deadlines.closed(connection)
        }
    }

    private static func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String)] {
        let box = ValueBox()
        let context = Unmanaged.passUnretained(box).toOpaque()
        withExtendedLifetime(box) {
            _ = MHD_get_connection_values(connection, kind, valetCollectValue, context)
        }
        return box.values
    }
}

/// Collects one MHD value iteration; lives only for the synchronous MHD_get_connection_values call.
final class ValueBox {
    var values: [(String, String)] = []
}

/// A bind address for MHD_OPTION_SOCK_ADDR (IPv4 or IPv6; names resolved once at startup).
struct SocketAddress {
    private var storage = sockaddr_storage()
    private(set) var isIPv6 = false

    init(host: String, port: UInt16) throws {
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, name, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v4) { dst.copyMemory(from: $0) } }
        } else if inet_pton(AF_INET6, name, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            isIPv6 = true
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v6) { dst.copyMemory(from: $0) } }
        } else {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else {
                throw HTTPServerError(description: "cannot resolve host '\(host)'")
            }
            defer { freeaddrinfo(result) }
            let length = Int(first.pointee.ai_addrlen)
            withUnsafeMutableBytes(of: &storage) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: length))
            }
            isIPv6 = first.pointee.ai_family == AF_INET6
            withUnsafeMutableBytes(of: &storage) { dst in
                if isIPv6 {
                    dst.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self).pointee.sin6_port = port.bigEndian
                } else {
                    dst.baseAddress!.assumingMemoryBound(to: sockaddr_in.self).pointee.sin_port = port.bigEndian
                }
            }
        }
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>) -> T) -> T {
        withUnsafeBytes(of: storage) { raw in body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }
}

// MARK: - C callbacks. Global functions: a closure here could inherit main-actor isolation and trap off-main.

func valetAccessHandler(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
    _ uploadSize: UnsafeMutablePointer<Int>?, _ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let uploadSize, let context else { return .NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    return server.access(connection: connection, url: url.map { String(cString: $0) } ?? "/",
                         method: method.map { String(cString: $0) } ?? "GET",
                         uploadData: uploadData, uploadSize: uploadSize, context: context)
}

func valetRequestCompleted(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
    _ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ code: MHD_RequestTerminationCode
) {
    guard let cls else { return }
    Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue().completed(context: context, code: code)
}

func valetConnectionEvent(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                          _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                          _ event: MHD_ConnectionNotificationCode) {
    guard let cls, let connection else { return }
    Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue().connectionEvent(connection, event)
}

func valetStreamReader(_ cls: UnsafeMutableRawPointer?, _ position: UInt64,
                       _ buffer: UnsafeMutablePointer<CChar>?, _ max: Int) -> Int {
    guard let cls, let buffer else { return VALET_MHD_READER_END_WITH_ERROR }
    return Unmanaged<Exchange>.fromOpaque(cls).takeUnretainedValue().read(into: buffer, max: max)
}

func valetStreamFree(_ cls: UnsafeMutableRawPointer?) {
    guard let cls else { return }
    Unmanaged<Exchange>.fromOpaque(cls).release()
}

func valetCollectValue(_ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind,
                       _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return .YES }
    Unmanaged<ValueBox>.fromOpaque(cls).takeUnretainedValue().values
        .append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}
