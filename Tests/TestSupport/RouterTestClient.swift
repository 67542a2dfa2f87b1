// Runs requests through a router and its middleware into a recording sink: what the HTTP server does, without
// a socket or a thread.
import HTTPServer

public struct RouterTestClient: Sendable {
    public let responder: RouterResponder

    public init(router: Router, errorResponse: @escaping @Sendable (Int, String) -> HTTPResponse = RouterResponder.plainError) {
        responder = RouterResponder(router: router, errorResponse: errorResponse)
    }

    /// The sink holds whatever was answered synchronously; later answers (from another thread) arrive in it too.
    @discardableResult
    public func execute(_ method: String, _ path: String, headers: [(String, String)] = [], body: String = "",
                        query: [String: String] = [:]) -> RecordingSink {
        let sink = RecordingSink()
        responder.respond(to: HTTPRequest(method: method, path: path, query: query, headers: HTTPHeaders(headers),
                                          body: Array(body.utf8)), sink: sink)
        return sink
    }
}
