// An error that knows its own HTTP answer. Handlers and middleware throw it; the router's responder renders it,
// once, for every route.

public protocol HTTPResponseError: Error, Sendable {
    var status: Int { get }
    /// Every header of the answer, Content-Type included (and e.g. Retry-After).
    var responseHeaders: [(String, String)] { get }
    var responseBody: [UInt8] { get }
}

extension HTTPResponseError {
    public var response: HTTPResponse {
        HTTPResponse(status: status, headers: responseHeaders, body: .bytes(responseBody))
    }
}

/// A refusal by the HTTP layer itself (404, 405, 413, 415, 431, or 500 for an error that cannot render itself):
/// the server's `errorResponse` gives it the API's error shape, which this layer does not know.
public struct HTTPRefusal: Error, Sendable {
    public var status: Int
    public var message: String
    public var headers: [(String, String)]

    public init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }
}
