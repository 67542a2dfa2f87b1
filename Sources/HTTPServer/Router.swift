// Maps method + path to a handler (with the middleware of its route); tells a wrong method (405) from an unknown
// path (404). Middleware added with `use` wraps every request, misses included.
import Foundation

public struct Router: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    struct Route: Sendable {
        var method: String
        var segments: [Segment]
        /// The pattern as registered; a bounded label for metrics.
        var label: String
        /// Media type the body must declare (parameters such as charset ignored); nil accepts anything.
        var consumes: String?
        var handler: HTTPHandler
    }

    public enum Resolution: Sendable {
        case matched(label: String, parameters: [String: String], consumes: String?, handler: HTTPHandler)
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    private var routes: [Route] = []
    /// Outermost first; they run for every request, before the route's own middleware.
    private(set) var middleware: [any HTTPMiddleware] = []

    public init() {}

    /// Every registered pattern once, for bounded metric labels.
    public var labels: [String] {
        var seen: [String] = []
        for route in routes where !seen.contains(route.label) { seen.append(route.label) }
        return seen
    }

    /// Wraps every request, including 404, 405 and the server's own refusals, so metrics and logs see them all.
    public mutating func use(_ middleware: any HTTPMiddleware) {
        self.middleware.append(middleware)
    }

    /// `pattern` segments written `{name}` match any one non-empty segment. `middleware` (outermost first) wraps
    /// this route only, inside the router-wide middleware and after the Content-Type check.
    public mutating func add(_ method: String, _ pattern: String, consumes: String? = nil,
                             middleware: [any HTTPMiddleware] = [], _ handler: @escaping HTTPHandler) {
        let segments = Router.split(pattern).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(part)
        }
        var wrapped = handler
        if !middleware.isEmpty {
            wrapped = { request, sink in try middleware.run(request, sink, handler: handler) }
        }
        routes.append(Route(method: method.uppercased(), segments: segments, label: pattern,
                            consumes: consumes?.lowercased(), handler: wrapped))
    }

    public func resolve(method: String, path: String) -> Resolution {
        let parts = Router.split(path)
        var allowed: [String] = []
        for route in routes {
            guard let parameters = Router.match(route.segments, parts) else { continue }
            if route.method == method.uppercased() {
                return .matched(label: route.label, parameters: parameters, consumes: route.consumes, handler: route.handler)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// A missing Content-Type is accepted (curl and many scripts omit it); a different one is not.
    static func accepts(_ contentType: String?, required: String?) -> Bool {
        guard let required, let contentType else { return true }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == required
    }

    private static func split(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private static func match(_ segments: [Segment], _ parts: [String]) -> [String: String]? {
        guard segments.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal): if literal != part { return nil }
            case .parameter(let name): parameters[name] = part
            }
        }
        return parameters
    }
}
