// The access log as middleware: one entry per exchange when it ends, with what the handler noted about it.

/// One finished exchange as the access log sees it: method, path, route, status, duration and the handler's notes
/// (job id, token counts, queue time). Never headers (keys) or bodies.
public struct AccessLogEntry: Sendable {
    public var method: String
    public var path: String
    public var route: String
    public var status: Int
    public var seconds: Double
    /// false when the client left before the answer was complete.
    public var completed: Bool
    public var notes: [(String, String)]

    /// `key=value` fields in a fixed order: the notes between status and the timings.
    public var fields: [(String, String)] {
        var out: [(String, String)] = [("method", method), ("path", path), ("status", String(status)), ("route", route)]
        out += notes
        out.append(("total_ms", String((seconds * 10_000).rounded() / 10)))
        if !completed { out.append(("client_gone", "true")) }
        return out
    }

    /// The text form: `GET /x 200 12.3 ms route=/x id=…`.
    public var line: String {
        let millis = (seconds * 10_000).rounded() / 10
        let extra = ([("route", route)] + notes).map { " \($0.0)=\($0.1)" }.joined()
        return "\(method) \(path) \(status) \(millis) ms\(extra)" + (completed ? "" : " client-gone")
    }
}

public struct RequestLogMiddleware: HTTPMiddleware {
    let log: @Sendable (AccessLogEntry) -> Void

    public init(log: @escaping @Sendable (AccessLogEntry) -> Void) { self.log = log }

    /// Logs the text form of each entry.
    public init(lines: @escaping @Sendable (String) -> Void) { self.log = { lines($0.line) } }

    public func handle(_ request: HTTPRequest, sink: any ResponseSink,
                       next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        let notes = request.notes
        try ExchangeObserver.observe(request, sink, next: next) { [log] record in
            log(AccessLogEntry(method: record.method, path: record.path, route: record.handler, status: record.status,
                               seconds: record.seconds, completed: record.completed, notes: notes.all))
        }
    }
}
