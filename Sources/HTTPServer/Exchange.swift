// One request/response on one MHD connection: the body being uploaded, the answer, the stream buffer,
// and the suspend/resume handshake between MHD's thread and whoever produces the answer.
import CHttpd
import Locks

/// The connection pointer is only handed to MHD calls that are safe from any thread (suspend/resume).
final class Exchange: @unchecked Sendable {
    // Written only on the MHD thread owning the connection: MHD never calls back for one connection
    // concurrently, and nothing else reads these fields.
    let connection: OpaquePointer
    let fd: Int32
    let method: String
    let path: String
    let headers: HTTPHeaders
    let query: [String: String]
    let started = ContinuousClock.now
    var body: [UInt8] = []
    var discardedBytes = 0
    var bodyTooLarge = false
    /// Body bytes this exchange holds of the server-wide budget; given back once the body has been handed on.
    var reservedBytes = 0
    /// The server-wide body budget had no room: refused with 503 once the upload ends.
    var overBudget = false
    var dispatched = false

    struct State {
        /// MHD_suspend_connection was called and no resume has been issued since.
        var suspended = false
        /// The request-completed callback ran: the connection is gone and must not be touched.
        var closed = false
        /// The watchdog saw the client leave, or the server is stopping.
        var peerGone = false
        var responded = false
        var pending: HTTPResponse?
        var headQueued = false
        var streaming = false
        var buffer: [UInt8] = []
        var readOffset = 0
        var finished = false
        var closeHandlers: [@Sendable (Bool) -> Void] = []
        var suspendedSince: ContinuousClock.Instant?
    }

    let state = Locked(State())

    init(connection: OpaquePointer, fd: Int32, method: String, path: String,
         headers: HTTPHeaders, query: [String: String]) {
        self.connection = connection
        self.fd = fd
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
    }

    enum Action {
        case queue(HTTPResponse)
        case suspended
        case close
    }

    // MARK: producer side (any thread)

    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool {
        state.withLock { s in
            guard !s.responded, !s.closed else { return false }
            s.responded = true
            s.pending = response
            if case .stream = response.body { s.streaming = true }
            wakeIfNeeded(&s)
            return true
        }
    }

    /// False once the client is gone; the producer should stop.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        state.withLock { s in
            guard !s.closed, !s.finished, !s.peerGone else { return false }
            s.buffer.append(contentsOf: bytes)
            wakeIfNeeded(&s)
            return true
        }
    }

    func finish() {
        state.withLock { s in
            guard !s.closed, !s.finished else { return }
            s.finished = true
            wakeIfNeeded(&s)
        }
    }

    func onClose(_ handler: @escaping @Sendable (Bool) -> Void) {
        let alreadyClosed = state.withLock { s -> Bool in
            if s.closed { return true }
            s.closeHandlers.append(handler)
            return false
        }
        if alreadyClosed { handler(false) }
    }

    var isClosed: Bool { state.withLock { $0.closed || $0.peerGone } }

    private func wakeIfNeeded(_ s: inout State) {
        guard s.suspended, !s.closed else { return }
        let hasWork = s.pending != nil || s.peerGone
            || (s.headQueued && (s.buffer.count > s.readOffset || s.finished))
        if hasWork {
            s.suspended = false
            s.suspendedSince = nil
            MHD_resume_connection(connection)
        }
    }

    // MARK: MHD side (the connection's thread)

    /// Called from the access handler once the request is complete: queue the answer if there is one,
    /// otherwise park the connection until the producer resumes it.
    func nextAction() -> Action {
        state.withLock { s in
            if s.peerGone || s.closed { return .close }
            if let response = s.pending {
                s.pending = nil
                s.headQueued = true
                return .queue(response)
            }
            suspend(&s)
            return .suspended
        }
    }

    /// The content reader: copy what is pending, or suspend and return 0 so MHD doesn't spin.
    func read(into buffer: UnsafeMutablePointer<CChar>, max: Int) -> Int {
        state.withLock { s in
            let available = s.buffer.count - s.readOffset
            if available > 0 {
                let n = Swift.min(available, max)
                s.buffer.withUnsafeBytes { raw in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + s.readOffset, byteCount: n)
                }
                s.readOffset += n
                if s.readOffset == s.buffer.count {
                    s.buffer.removeAll(keepingCapacity: true)
                    s.readOffset = 0
                } else if s.readOffset >= 64 * 1024 {
                    // A producer that stays ahead of the socket must not grow the buffer forever.
                    s.buffer.removeFirst(s.readOffset)
                    s.readOffset = 0
                }
                return n
            }
            if s.finished { return VALET_MHD_READER_END_OF_STREAM }
            if s.peerGone || s.closed { return VALET_MHD_READER_END_WITH_ERROR }
            suspend(&s)
            return 0
        }
    }

    private func suspend(_ s: inout State) {
        s.suspended = true
        s.suspendedSince = ContinuousClock.now
        MHD_suspend_connection(connection)
    }

    /// The watchdog (or shutdown) decided the client is gone: wake the connection so MHD notices.
    func markPeerGone() {
        state.withLock { s in
            guard !s.closed, !s.peerGone else { return }
            s.peerGone = true
            wakeIfNeeded(&s)
        }
    }

    var suspendedFor: Duration? {
        state.withLock { s in s.suspendedSince.map { ContinuousClock.now - $0 } }
    }

    /// Request-completed callback. `ok` is MHD's verdict; a stream that never finished did not complete.
    func complete(ok: Bool) {
        let (handlers, completed) = state.withLock { s in
            s.closed = true
            s.suspended = false
            let handlers = s.closeHandlers
            s.closeHandlers = []
            let completed = ok && s.headQueued && (!s.streaming || s.finished)
            return (handlers, completed)
        }
        for handler in handlers { handler(completed) }
    }
}
