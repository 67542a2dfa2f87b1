// `valet_http_requests_total` and `valet_http_request_duration_seconds`. Every label set exists from startup, so
// counting a request reads immutable tables and adds to one atomic: it never takes the library registry's lock, and
// a dashboard sees a series at 0 before its first request.
import Prometheus

struct HTTPMetrics: Sendable {
    /// Label value for anything outside a bounded set (unknown handler, method or status).
    static let other = "other"
    // Valet routes only GET and POST; any other method is answered 404/405 and counts as `other`, which keeps the
    // up-front label sets at handlers × 3 × statuses.
    static let methods = ["GET", "POST"]
    /// The codes Valet answers with (the HTTP layer's own 404/405/413/415/431, the API's errors, 499 for a client
    /// that went away); any other code counts as `other`.
    static let statuses = [200, 400, 401, 404, 405, 413, 415, 429, 431, 499, 500, 503]

    /// Handler label values, sorted, `other` among them.
    let handlers: [String]
    private let handlerIndex: [String: Int]
    private let methodIndex: [String: Int]
    private let statusIndex: [Int: Int]
    /// handler-major, then method, then status; each dimension's last index is `other`.
    private let requests: [Counter]
    let durations: HistogramFamily

    init(handlers: [String], in registry: PrometheusCollectorRegistry) {
        let handlers = Set(handlers).subtracting([Self.other]).sorted() + [Self.other]
        let methods = Self.methods + [Self.other]
        let statuses = Self.statuses.map(String.init) + [Self.other]
        self.handlers = handlers
        handlerIndex = Self.index(handlers)
        methodIndex = Self.index(methods)
        statusIndex = Dictionary(uniqueKeysWithValues: Self.statuses.enumerated().map { ($1, $0) })
        requests = handlers.flatMap { handler in
            methods.flatMap { method in
                statuses.map { registry.counter(.httpRequests, values: [handler, method, $0]) }
            }
        }
        durations = HistogramFamily(.httpRequestDuration, bounds: MetricBuckets.httpDuration, labelValues: handlers)
    }

    /// `handler` is a route name (never a raw path); names not given at init count as `other`, as do unknown
    /// methods and statuses.
    func record(handler: String, method: String, status: Int, seconds: Double) {
        let h = handlerIndex[handler] ?? handlers.count - 1
        let m = methodIndex[method] ?? Self.methods.count
        let s = statusIndex[status] ?? Self.statuses.count
        let perHandler = (Self.methods.count + 1) * (Self.statuses.count + 1)
        requests[h * perHandler + m * (Self.statuses.count + 1) + s].increment()
        durations.series[h].observe(max(seconds, 0))
    }

    private static func index(_ values: [String]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
    }
}
