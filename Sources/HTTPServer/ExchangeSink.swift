// The response sink over one MHD exchange: what the router hands to the middleware and handlers it runs.

struct ExchangeSink: ResponseSink {
    let exchange: Exchange

    @discardableResult
    func respond(_ response: HTTPResponse) -> Bool { exchange.respond(response) }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool { exchange.write(bytes) }

    func finish() { exchange.finish() }

    func onClose(_ handler: @escaping @Sendable (_ completed: Bool) -> Void) { exchange.onClose(handler) }

    var isClientGone: Bool { exchange.isClosed }
}
