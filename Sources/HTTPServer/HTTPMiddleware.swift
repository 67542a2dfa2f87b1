// A handler wrapped by a handler: cross-cutting concerns (auth, metrics, request logs) that routes share.

/// What a route runs. It answers through the sink, now or later from any thread, and may throw instead: the
/// router's responder turns the error into the answer.
public typealias HTTPHandler = @Sendable (HTTPRequest, any ResponseSink) throws -> Void

public protocol HTTPMiddleware: Sendable {
    /// Call `next` to go on down the chain (possibly with another request or a wrapping sink), or answer or throw
    /// to cut it short. An error thrown below passes back up through here.
    func handle(_ request: HTTPRequest, sink: any ResponseSink,
                next: (HTTPRequest, any ResponseSink) throws -> Void) throws
}

extension Array where Element == any HTTPMiddleware {
    /// Runs the chain from `index`, outermost first, ending in `handler`. Recursion over non-escaping closures:
    /// nothing is allocated per request for the chain itself.
    func run(from index: Int = 0, _ request: HTTPRequest, _ sink: any ResponseSink,
             handler: (HTTPRequest, any ResponseSink) throws -> Void) throws {
        guard index < count else { return try handler(request, sink) }
        try self[index].handle(request, sink: sink) { request, sink in
            try run(from: index + 1, request, sink, handler: handler)
        }
    }
}
