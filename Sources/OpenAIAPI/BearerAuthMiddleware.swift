// The API key check as middleware on the API routes (not /health, not /metrics): one place instead of a guard
// in every route.
import HTTPServer

public struct BearerAuthMiddleware: HTTPMiddleware {
    let key: [UInt8]

    public init(key: String) { self.key = Array(key.utf8) }

    public func handle(_ request: HTTPRequest, sink: any ResponseSink,
                       next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        let header = request.headers["authorization"] ?? ""
        let prefix = "bearer "
        let presented = header.lowercased().hasPrefix(prefix) ? String(header.dropFirst(prefix.count)) : ""
        guard BearerAuthMiddleware.constantTimeEquals(Array(presented.utf8), key) else { throw APIError.unauthorized }
        try next(request, sink)
    }

    /// Time depends only on the presented key's length, never on where the first mismatch is.
    static func constantTimeEquals(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = presented.count == expected.count ? 0 : 1
        for i in 0..<presented.count {
            let e = expected.isEmpty ? 0 : expected[i % expected.count]
            difference |= presented[i] ^ e
        }
        return difference == 0 && !expected.isEmpty
    }
}
