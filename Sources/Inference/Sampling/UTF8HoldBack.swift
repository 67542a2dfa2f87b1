// Releases token bytes only in whole UTF-8 characters (a token may end mid-character).
// Small internal stand-in: the tokenizer's StreamingDetokenizer had not landed when the scheduler was written.

struct UTF8HoldBack: Sendable {
    private var pending: [UInt8] = []

    /// Appends bytes; returns the prefix that ends on a character boundary, keeping an unfinished tail.
    mutating func push(_ bytes: [UInt8]) -> [UInt8] {
        pending += bytes
        let cut = Self.completePrefixLength(pending)
        let out = Array(pending[..<cut])
        pending.removeFirst(cut)
        return out
    }

    /// At the end of generation: whatever is left (an unfinished character decodes to U+FFFD later).
    mutating func flush() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    var isEmpty: Bool { pending.isEmpty }

    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var i = n - 1
        // Find the last byte that starts a character, looking back at most 3 continuation bytes.
        while i >= 0 && i >= n - 4 {
            let b = bytes[i]
            if b & 0xC0 != 0x80 {
                let need: Int
                switch b {
                case 0x00...0x7F: need = 1
                case 0xC0...0xDF: need = 2
                case 0xE0...0xEF: need = 3
                case 0xF0...0xF7: need = 4
                default: need = 1  // invalid lead byte: let it through as U+FFFD
                }
                return n - i < need ? i : n
            }
            i -= 1
        }
        return n  // only stray continuation bytes: invalid either way, release them
    }
}
