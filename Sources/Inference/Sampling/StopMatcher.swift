// Stop strings matched on the decoded text across token boundaries: the stop and what follows it are never
// emitted, and text that could still be the start of a stop is held back until it is decided.

public struct StopMatcher: Sendable {
    private let stops: [[UInt8]]
    private let longest: Int
    private var pending: [UInt8] = []
    /// The stop string that ended the text, once one has.
    public private(set) var matched: String?

    public init(stops: [String]) {
        let nonEmpty = stops.filter { !$0.isEmpty }
        self.stops = nonEmpty.map { Array($0.utf8) }
        longest = self.stops.map(\.count).max() ?? 0
    }

    /// Feeds whole-character UTF-8 bytes; returns the bytes safe to emit now. After a match nothing more comes out.
    public mutating func push(_ bytes: [UInt8]) -> [UInt8] {
        guard matched == nil else { return [] }
        if stops.isEmpty { return bytes }
        pending += bytes
        var earliest: (at: Int, stop: Int)?
        for (s, stop) in stops.enumerated() {
            if let at = Self.find(stop, in: pending), earliest.map({ at < $0.at }) ?? true {
                earliest = (at, s)
            }
        }
        if let hit = earliest {
            matched = String(decoding: stops[hit.stop], as: UTF8.self)
            let out = Array(pending[..<hit.at])
            pending = []
            return out
        }
        let hold = heldBackLength()
        let out = Array(pending[..<(pending.count - hold)])
        pending.removeFirst(pending.count - hold)
        return out
    }

    /// The generation ended without completing a stop: release what was held back.
    public mutating func flush() -> [UInt8] {
        defer { pending = [] }
        return matched == nil ? pending : []
    }

    /// The longest tail of `pending` that is a proper prefix of some stop string.
    private func heldBackLength() -> Int {
        var length = Swift.min(pending.count, longest - 1)
        while length > 0 {
            let tail = pending[(pending.count - length)...]
            if stops.contains(where: { $0.count > length && $0[..<length].elementsEqual(tail) }) {
                return length
            }
            length -= 1
        }
        return 0
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = 0
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
