// What the metrics and request-log middleware share: the outcome of one exchange (route, method, status,
// duration to the end of the response, stream included), reported once when the connection closes.
import Synchronization

/// One finished exchange, for access metrics and logs (never carries the body or headers).
public struct HTTPExchangeRecord: Sendable {
    public var handler: String
    public var method: String
    public var path: String
    /// 499 when nothing was answered before the client left.
    public var status: Int
    public var seconds: Double
    public var completed: Bool
}

/// Passes everything through and remembers the status of the answer that was accepted.
final class StatusRecordingSink: ResponseSink {
    let inner: any ResponseSink
    private let status = Atomic<Int>(0)

    init(_ inner: any ResponseSink) { self.inner = inner }

    var recorded: Int { status.load(ordering: .acquiring) }

    /// An error is on its way up to the router's responder, which answers with this status unless something was
    /// answered already.
    func note(_ status: Int) {
        _ = self.status.compareExchange(expected: 0, desired: status, ordering: .acquiringAndReleasing)
    }

    /// The status is claimed before the answer goes out: a small answer can be sent and its connection closed (and
    /// the close handler read the status) on the server's thread before `inner.respond` returns here.
    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool {
        let claimed = status.compareExchange(expected: 0, desired: response.status, ordering: .acquiringAndReleasing).exchanged
        let accepted = inner.respond(response)
        if !accepted && claimed {
            _ = status.compareExchange(expected: response.status, desired: 0, ordering: .acquiringAndReleasing)
        }
        return accepted
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool { inner.write(bytes) }
    func finish() { inner.finish() }
    func onClose(_ handler: @escaping @Sendable (Bool) -> Void) { inner.onClose(handler) }
    var isClientGone: Bool { inner.isClientGone }
}

enum ExchangeObserver {
    static func observe(_ request: HTTPRequest, _ sink: any ResponseSink,
                        next: (HTTPRequest, any ResponseSink) throws -> Void,
                        report: @escaping @Sendable (HTTPExchangeRecord) -> Void) throws {
        let observed = StatusRecordingSink(sink)
        let (route, method, path, received) = (request.route, request.method, request.path, request.received)
        sink.onClose { completed in
            let elapsed = ContinuousClock.now - received
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let status = observed.recorded
            report(HTTPExchangeRecord(handler: route, method: method, path: path, status: status == 0 ? 499 : status,
                                      seconds: seconds, completed: completed))
        }
        do {
            try next(request, observed)
        } catch {
            observed.note(RouterResponder.status(for: error))
            throw error
        }
    }
}
