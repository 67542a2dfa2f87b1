// A set of token ids as a bitset over the vocabulary: what a constraint allows at one step.

/// Allowed tokens, one bit per vocabulary entry. `apply(to:)` sets every other logit to -infinity.
public struct TokenMask: Sendable, Equatable {
    public let count: Int
    private(set) var words: [UInt64]

    /// All tokens disallowed (`allowing: false`) or allowed.
    public init(count: Int, allowing: Bool = false) {
        self.count = count
        words = [UInt64](repeating: allowing ? ~0 : 0, count: (count + 63) / 64)
        if allowing, count % 64 != 0 { words[words.count - 1] = (1 << UInt64(count % 64)) - 1 }
    }

    public func contains(_ token: Int32) -> Bool {
        guard token >= 0, Int(token) < count else { return false }
        return words[Int(token) >> 6] & (1 << UInt64(token & 63)) != 0
    }

    public mutating func insert(_ token: Int32) {
        guard token >= 0, Int(token) < count else { return }
        words[Int(token) >> 6] |= 1 << UInt64(token & 63)
    }

    public mutating func remove(_ token: Int32) {
        guard token >= 0, Int(token) < count else { return }
        words[Int(token) >> 6] &= ~(1 << UInt64(token & 63))
    }

    public var allowedCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// The allowed ids in increasing order.
    public var tokens: [Int32] {
        var out: [Int32] = []
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                out.append(Int32(w * 64 + bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
        return out
    }

    /// Sets the logit of every token outside the mask to -infinity. Rows longer than the mask (padding in the
    /// output projection) are masked beyond it too.
    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        let n = logits.count
        for (w, word) in words.enumerated() where word != ~0 {
            let base = w * 64
            for b in 0..<64 where word & (1 << UInt64(b)) == 0 {
                let i = base + b
                if i >= n { break }
                logits[i] = -.infinity
            }
        }
        if n > count { for i in count..<n { logits[i] = -.infinity } }
    }
}
