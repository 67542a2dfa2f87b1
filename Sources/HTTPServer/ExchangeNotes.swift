// Facts a handler learns about its exchange (job id, token counts, queue time) for the access log, which writes them
// once the exchange ends. Handlers add only what is safe to log: never keys or prompt text.
import Locks

public final class ExchangeNotes: Sendable {
    private let fields = Locked<[(String, String)]>([])

    public init() {}

    /// Sets `key`, replacing an earlier value, keeping the order keys were first set in.
    public func set(_ key: String, _ value: String) {
        fields.withLock { list in
            if let i = list.firstIndex(where: { $0.0 == key }) {
                list[i].1 = value
            } else {
                list.append((key, value))
            }
        }
    }

    public var all: [(String, String)] { fields.withLock { $0 } }

    public subscript(_ key: String) -> String? { fields.withLock { list in list.first { $0.0 == key }?.1 } }
}
