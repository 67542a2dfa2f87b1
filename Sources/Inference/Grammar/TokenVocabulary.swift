// The vocabulary as a byte trie, laid out in preorder so a rejected prefix skips its whole subtree in one jump.
// Built once per tokenizer and shared by every grammar masker.

/// The tokens a grammar may produce, by their bytes. Special tokens (control, user-defined, unknown) are never
/// grammar text and are left out; end-of-generation tokens are allowed by the masker exactly when the grammar is
/// complete.
public final class TokenVocabulary: Sendable {
    public let size: Int
    public let endOfGeneration: Set<Int32>
    /// Preorder trie: node 0 is the root; node i's subtree is i ..< i + subtreeSize[i].
    let byte: [UInt8]
    let depth: [UInt16]
    let subtreeSize: [Int32]
    /// Tokens ending at node i: tokenList[tokenStart[i] ..< tokenStart[i + 1]].
    let tokenStart: [Int32]
    let tokenList: [Int32]
    /// The root's child for each first byte (-1: none).
    let rootChild: [Int32]
    public let longestToken: Int
    private let tokenBytes: [[UInt8]?]

    /// `bytes[i]` is token i's text, or nil for a token a grammar must never produce.
    public init(bytes: [[UInt8]?], endOfGeneration: Set<Int32>) {
        size = bytes.count
        tokenBytes = bytes.map { $0?.isEmpty == false ? $0 : nil }
        self.endOfGeneration = endOfGeneration
        // Build with child maps, then flatten.
        var children: [[UInt8: Int32]] = [[:]]
        var ending: [[Int32]] = [[]]
        var longest = 0
        for (id, b) in bytes.enumerated() {
            guard let b, !b.isEmpty, !endOfGeneration.contains(Int32(id)) else { continue }
            longest = Swift.max(longest, b.count)
            var n = 0
            for x in b {
                if let c = children[n][x] {
                    n = Int(c)
                } else {
                    children.append([:])
                    ending.append([])
                    children[n][x] = Int32(children.count - 1)
                    n = children.count - 1
                }
            }
            ending[n].append(Int32(id))
        }
        longestToken = longest
        var byte: [UInt8] = [], depth: [UInt16] = [], sizes: [Int32] = [], starts: [Int32] = [], list: [Int32] = []
        byte.reserveCapacity(children.count)
        // Iterative preorder; subtree sizes are filled in when a node's last descendant is placed.
        var order: [(node: Int, byte: UInt8, depth: UInt16, exit: Bool, index: Int)] = [(0, 0, 0, false, 0)]
        while let item = order.popLast() {
            if item.exit {
                sizes[item.index] = Int32(byte.count - item.index)
                continue
            }
            let index = byte.count
            byte.append(item.byte)
            depth.append(item.depth)
            sizes.append(0)
            starts.append(Int32(list.count))
            list.append(contentsOf: ending[item.node])
            order.append((item.node, 0, 0, true, index))
            for (x, c) in children[item.node].sorted(by: { $0.key > $1.key }) {
                order.append((Int(c), x, item.depth + 1, false, 0))
            }
        }
        starts.append(Int32(list.count))
        var root = [Int32](repeating: -1, count: 256)
        var i = 1
        while i < byte.count {
            root[Int(byte[i])] = Int32(i)
            i += Int(sizes[i])
        }
        self.byte = byte
        self.depth = depth
        subtreeSize = sizes
        tokenStart = starts
        tokenList = list
        rootChild = root
    }

    /// The tokenizer's vocabulary without its special tokens.
    public convenience init(tokenizer: Tokenizer) {
        let bytes: [[UInt8]?] = (0..<tokenizer.vocabSize).map { i in
            tokenizer.isSpecial(Int32(i)) ? nil : tokenizer.bytes(of: Int32(i))
        }
        self.init(bytes: bytes, endOfGeneration: tokenizer.endOfGenerationTokens)
    }

    public var nodeCount: Int { byte.count }

    /// The bytes of a token in the trie (nil for special and end-of-generation tokens).
    public func bytes(of token: Int32) -> [UInt8]? {
        guard token >= 0, Int(token) < size, !endOfGeneration.contains(token) else { return nil }
        return tokenBytes[Int(token)]
    }

    /// Tokens a greedy longest-match cut of `bytes` takes (nil if some byte starts no token). With every single byte
    /// a token, as in byte-level BPE, this is at most `bytes.count`.
    public func greedyTokenCount(_ bytes: [UInt8]) -> Int? {
        var pos = 0
        var count = 0
        while pos < bytes.count {
            var node = Int(rootChild[Int(bytes[pos])])
            guard node >= 0 else { return nil }
            var best = 0
            var len = 1
            while true {
                if tokenStart[node + 1] > tokenStart[node] { best = len }
                guard pos + len < bytes.count, let next = child(of: node, byte: bytes[pos + len]) else { break }
                node = next
                len += 1
            }
            guard best > 0 else { return nil }
            pos += best
            count += 1
        }
        return count
    }

    func child(of node: Int, byte b: UInt8) -> Int? {
        var c = node + 1
        let end = node + Int(subtreeSize[node])
        while c < end {
            if byte[c] == b { return c }
            c += Int(subtreeSize[c])
        }
        return nil
    }
}
