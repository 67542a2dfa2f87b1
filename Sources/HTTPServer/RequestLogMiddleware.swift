// The request log as middleware; the caller picks the level, so it stays quiet unless asked.

/// One line per exchange once it ends: method, path, route, status, duration. Never headers (keys) or bodies.
public struct RequestLogMiddleware: HTTPMiddleware {
    let log: @Sendable (String) -> Void

    public init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    public func handle(_ request: HTTPRequest, sink: any ResponseSink,
                       next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        try ExchangeObserver.observe(request, sink, next: next) { [log] record in
            let millis = (record.seconds * 1000 * 10).rounded() / 10
            log("\(record.method) \(record.path) \(record.status) \(millis) ms route=\(record.handler)"
                + (record.completed ? "" : " client-gone"))
        }
    }
}
