// A response sink that keeps everything a handler sent, for tests of the layers above HTTP without a socket.
import HTTPServer
import Locks

public final class RecordingSink: ResponseSink {
    public struct Recorded: Sendable {
        /// Every head offered, accepted or not: a second one is a bug the tests want to see.
        public var offered: [HTTPResponse] = []
        public var writes: [[UInt8]] = []
        public var finished = false
        public var closed: Bool?
    }

    private let state = Locked(Recorded())
    private let closeHandlers = Locked<[@Sendable (Bool) -> Void]>([])

    public init() {}

    public var recorded: Recorded { state.withLock { $0 } }
    /// The accepted head.
    public var response: HTTPResponse? { recorded.offered.first }
    public var status: Int? { response?.status }

    public func header(_ name: String) -> String? {
        response?.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// A whole body, or everything streamed so far.
    public var body: [UInt8] {
        let r = recorded
        if let head = r.offered.first, case .bytes(let bytes) = head.body { return bytes }
        return r.writes.flatMap { $0 }
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The `data:` payloads of a Server-Sent-Events body, in order.
    public var events: [String] {
        text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    @discardableResult
    public func respond(_ response: HTTPResponse) -> Bool {
        state.withLock { s in
            s.offered.append(response)
            return s.offered.count == 1 && s.closed == nil
        }
    }

    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        state.withLock { s in
            guard s.closed == nil, !s.finished else { return false }
            s.writes.append(bytes)
            return true
        }
    }

    public func finish() { state.withLock { $0.finished = true } }

    public func onClose(_ handler: @escaping @Sendable (Bool) -> Void) {
        if let closed = state.withLock({ $0.closed }) { return handler(closed) }
        closeHandlers.withLock { $0.append(handler) }
    }

    public var isClientGone: Bool { state.withLock { $0.closed == false } }

    /// The exchange ends: `completed` false is the client leaving first.
    public func close(completed: Bool) {
        state.withLock { $0.closed = completed }
        for handler in closeHandlers.withLock({ h in defer { h = [] }; return h }) { handler(completed) }
    }
}
