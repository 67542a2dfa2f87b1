// Where a handler's answer goes. The MHD exchange is one sink; tests record into another, so everything above
// HTTP can be exercised without a socket.

/// Safe to keep and call from any thread: answers usually arrive later, from the engine thread.
public protocol ResponseSink: Sendable {
    /// Answer once; a second answer is refused (false). For `.stream` bodies, follow with `write` calls and one
    /// `finish`.
    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool

    /// Append bytes to a streamed body; false once the client is gone, so the producer can stop.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool

    func finish()

    /// Runs once when the exchange ends: true if the whole response was delivered, false if the client left (or
    /// the server stopped) first. Runs at once if that already happened.
    func onClose(_ handler: @escaping @Sendable (_ completed: Bool) -> Void)

    var isClientGone: Bool { get }
}
