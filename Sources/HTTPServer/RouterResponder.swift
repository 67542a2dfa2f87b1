// Runs one request through the router-wide middleware and its route, and is the one place where a thrown error
// becomes the answer. The HTTP server calls it; so does the socket-free test driver.

public struct RouterResponder: Sendable {
    public let router: Router
    /// Renders the errors that cannot render themselves (`HTTPRefusal`, and anything else as a 500).
    public let errorResponse: @Sendable (_ status: Int, _ message: String) -> HTTPResponse

    public init(router: Router, errorResponse: @escaping @Sendable (Int, String) -> HTTPResponse = RouterResponder.plainError) {
        self.router = router
        self.errorResponse = errorResponse
    }

    public static let plainError: @Sendable (Int, String) -> HTTPResponse = { status, message in
        HTTPResponse.text(status, message + "\n")
    }

    /// Route, run, and answer whatever was thrown. Sets `request.route` and `pathParameters`.
    public func respond(to request: HTTPRequest, sink: any ResponseSink) {
        var request = request
        let handler: HTTPHandler
        switch router.resolve(method: request.method, path: request.path) {
        case .matched(let label, let parameters, let consumes, let matched):
            request.route = label
            request.pathParameters = parameters
            handler = { request, sink in
                guard Router.accepts(request.headers["content-type"], required: consumes) else {
                    throw HTTPRefusal(status: 415, message: "Content-Type must be \(consumes ?? "").")
                }
                try matched(request, sink)
            }
        case .methodNotAllowed(let allowed):
            request.route = "method_not_allowed"
            let list = allowed.joined(separator: ", ")
            let refusal = HTTPRefusal(status: 405, message: "Method \(request.method) is not allowed on \(request.path); use \(list).",
                                      headers: [("Allow", list)])
            handler = { _, _ in throw refusal }
        case .notFound:
            request.route = "not_found"
            let refusal = HTTPRefusal(status: 404, message: "No route for \(request.method) \(request.path).")
            handler = { _, _ in throw refusal }
        }
        run(request, sink, handler)
    }

    /// A refusal decided before routing (body or headers too large), still seen by the router-wide middleware.
    public func refuse(_ request: HTTPRequest, _ refusal: HTTPRefusal, sink: any ResponseSink) {
        run(request, sink) { _, _ in throw refusal }
    }

    private func run(_ request: HTTPRequest, _ sink: any ResponseSink, _ handler: HTTPHandler) {
        do {
            try router.middleware.run(request, sink, handler: handler)
        } catch {
            // Already answered (a stream under way, say): the sink refuses a second head, and that is right.
            sink.respond(response(for: error))
        }
    }

    public func response(for error: any Error) -> HTTPResponse {
        if let error = error as? any HTTPResponseError { return error.response }
        if let refusal = error as? HTTPRefusal {
            var response = errorResponse(refusal.status, refusal.message)
            response.headers += refusal.headers
            return response
        }
        // Never the error's text: it may name internals; the status says enough to the client.
        return errorResponse(500, "The server failed to handle the request.")
    }

    /// The status `response(for:)` will give, for middleware that records outcomes as an error passes by.
    public static func status(for error: any Error) -> Int {
        (error as? any HTTPResponseError)?.status ?? (error as? HTTPRefusal)?.status ?? 500
    }
}
