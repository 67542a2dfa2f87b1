// Cross-origin access for browser clients, off unless origins are configured: preflight OPTIONS answered here,
// before auth (a preflight carries no key), and the allow headers added to every answer to an allowed origin.

public struct CORSMiddleware: HTTPMiddleware {
    /// Exact origins (`https://app.example`), or `*` for any.
    public let allowedOrigins: [String]
    /// Renders errors thrown below, so they too go out with the CORS headers a browser needs to read them.
    let errors: RouterResponder

    public init(allowedOrigins: [String],
                errorResponse: @escaping @Sendable (Int, String) -> HTTPResponse = RouterResponder.plainError) {
        self.allowedOrigins = allowedOrigins
        errors = RouterResponder(router: Router(), errorResponse: errorResponse)
    }

    static let allowedMethods = "GET, POST, OPTIONS"
    static let allowedHeaders = "Authorization, Content-Type, X-Valet-Priority"
    static let exposedHeaders = "X-Request-Id, Retry-After"

    /// The value of Access-Control-Allow-Origin for this Origin, or nil when it is not allowed.
    func allow(_ origin: String) -> String? {
        if allowedOrigins.contains("*") { return "*" }
        return allowedOrigins.contains(origin) ? origin : nil
    }

    public func handle(_ request: HTTPRequest, sink: any ResponseSink,
                       next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        guard let origin = request.headers["origin"], let allowed = allow(origin) else {
            return try next(request, sink)
        }
        var headers = [("Access-Control-Allow-Origin", allowed)]
        if allowed != "*" { headers.append(("Vary", "Origin")) }
        if request.method == "OPTIONS", request.headers["access-control-request-method"] != nil {
            headers += [("Access-Control-Allow-Methods", CORSMiddleware.allowedMethods),
                        ("Access-Control-Allow-Headers",
                         request.headers["access-control-request-headers"] ?? CORSMiddleware.allowedHeaders),
                        ("Access-Control-Max-Age", "600")]
            sink.respond(HTTPResponse(status: 204, headers: headers))
            return
        }
        headers.append(("Access-Control-Expose-Headers", CORSMiddleware.exposedHeaders))
        let wrapped = HeaderAddingSink(sink, headers: headers)
        do {
            try next(request, wrapped)
        } catch {
            wrapped.respond(errors.response(for: error))
        }
    }
}

/// Adds headers to the one answer's head; everything else passes through.
final class HeaderAddingSink: ResponseSink {
    let inner: any ResponseSink
    let headers: [(String, String)]

    init(_ inner: any ResponseSink, headers: [(String, String)]) {
        self.inner = inner
        self.headers = headers
    }

    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool {
        var response = response
        response.headers += headers
        return inner.respond(response)
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool { inner.write(bytes) }
    func finish() { inner.finish() }
    func onClose(_ handler: @escaping @Sendable (Bool) -> Void) { inner.onClose(handler) }
    var isClientGone: Bool { inner.isClientGone }
}
