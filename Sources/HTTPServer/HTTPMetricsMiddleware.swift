// The HTTP access metrics as middleware: every exchange, misses and refusals included, reported when it closes.

/// Counts every exchange by route label, method and status, with its duration.
public struct HTTPMetricsMiddleware: HTTPMiddleware {
    let record: @Sendable (HTTPExchangeRecord) -> Void

    public init(record: @escaping @Sendable (HTTPExchangeRecord) -> Void) { self.record = record }

    public func handle(_ request: HTTPRequest, sink: any ResponseSink,
                       next: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        try ExchangeObserver.observe(request, sink, next: next, report: record)
    }
}
