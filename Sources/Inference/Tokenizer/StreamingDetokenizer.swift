// Turns token bytes arriving one token at a time into text, never splitting a UTF-8 character between outputs.

/// Byte-level and byte-fallback tokens can end in the middle of a character (an emoji often spans two or
/// three tokens), so the trailing bytes of an unfinished character are held back until the rest arrives.
public struct StreamingDetokenizer: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// True when bytes of an unfinished character are waiting.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Adds a token's bytes and returns the text completed by them (possibly empty).
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        let cut = Self.completePrefix(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    public mutating func append(token: Int32, from decoder: some TokenDecoding) -> String {
        append(decoder.bytes(of: token))
    }

    /// Returns whatever is held back; an unfinished character comes out as U+FFFD.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the prefix that does not end inside a character that more bytes could still complete.
    /// Bytes that can never become valid are let through, to be shown as U+FFFD rather than held forever.
    static func completePrefix(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        // Walk back over at most three continuation bytes to the last lead byte.
        while i >= 0 && n - i <= 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 else { return n }
        let lead = b[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return n
        }
        return n - i < need ? i : n
    }
}
