// SentencePiece-style BPE for `tokenizer.ggml.model = llama`: merges by token score, falls back to <0xNN> bytes.

struct SentencePieceMerger {
    let ids: [String: Int32]
    let scores: [Float]
    /// Token id of `<0xNN>` for each byte, or -1.
    let byteTokens: [Int32]
    let unknown: Int32?

    private struct Bigram: Comparable {
        var score: Float
        var left: Int
        var right: Int
        var size: Int

        /// Higher score first; on a tie the leftmost pair, as SentencePiece does.
        static func < (a: Bigram, b: Bigram) -> Bool { a.score > b.score || (a.score == b.score && a.left < b.left) }
    }

    /// Tokenizes `text` (spaces already escaped to U+2581) and appends the ids to `out`.
    func encode(_ text: [UInt8], into out: inout [Int32]) {
        guard !text.isEmpty else { return }
        // One symbol per UTF-8 character, linked so merged-away symbols drop out of the chain.
        var start: [Int] = [], length: [Int] = [], prev: [Int] = [], next: [Int] = []
        var i = 0
        while i < text.count {
            let b = text[i]
            let len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
            let n = min(len, text.count - i)
            prev.append(start.count - 1)
            start.append(i)
            length.append(n)
            i += n
            next.append(i < text.count ? start.count : -1)
        }

        var heap = MergeHeap<Bigram>(capacity: start.count)
        func token(_ s: Int, _ n: Int) -> Int32? {
            ids[String(decoding: text[s..<(s + n)], as: UTF8.self)]
        }
        func tryPair(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let size = length[l] + length[r]
            guard let id = token(start[l], size), Int(id) < scores.count else { return }
            heap.push(Bigram(score: scores[Int(id)], left: l, right: r, size: size))
        }

        for k in 1..<start.count { tryPair(k - 1, k) }
        while !heap.isEmpty {
            let g = heap.pop()
            // Skip pairs made stale by an earlier merge of either side.
            guard length[g.left] > 0, length[g.right] > 0, length[g.left] + length[g.right] == g.size else { continue }
            length[g.left] += length[g.right]
            length[g.right] = 0
            next[g.left] = next[g.right]
            if next[g.right] >= 0 { prev[next[g.right]] = g.left }
            tryPair(prev[g.left], g.left)
            tryPair(g.left, next[g.left])
        }

        var k = 0
        while k >= 0 {
            if let id = token(start[k], length[k]) {
                out.append(id)
            } else {
                // Only single characters can be missing (merges always form tokens): spell them in bytes.
                for b in text[start[k]..<(start[k] + length[k])] {
                    let t = byteTokens[Int(b)]
                    if t >= 0 { out.append(t) } else if let unknown { out.append(unknown) }
                }
            }
            k = next[k]
        }
    }
}
