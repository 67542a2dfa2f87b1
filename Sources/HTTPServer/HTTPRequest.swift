// What a handler sees of one HTTP request: method, path, query, headers and the whole body.

public struct HTTPHeaders: Sendable, Sequence {
    private var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        for (name, value) in fields { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Header names are case-insensitive; the first occurrence wins.
    public subscript(name: String) -> String? {
        let wanted = name.lowercased()
        return fields.first { $0.name.lowercased() == wanted }?.value
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// Percent-decoded path without the query string.
    public var path: String
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Values of `{name}` segments of the matched route.
    public var pathParameters: [String: String] = [:]
    /// The matched pattern, or what kind of miss it was ("not_found", "method_not_allowed", "unmatched"): a
    /// bounded label for metrics and logs.
    public var route = "unmatched"
    /// When the request's head arrived, before its body: an exchange's duration is measured from here.
    public var received = ContinuousClock.now
    /// Shared by every copy of this request down the middleware chain: what the handler notes, the log reads.
    public var notes = ExchangeNotes()

    public init(method: String, path: String, query: [String: String] = [:],
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}
