// Owns the KV pool's capacity: hands out block ids, counts references, and keeps full blocks content-addressed so
// later sequences with the same prefix reuse them. Cached blocks nobody references are capacity too: they are
// evicted, least recently released first, when a new block is needed. A cached block can also seed a new
// sequence's own block with the rows its tokens share, so a prompt matching a cached one past a block boundary
// recomputes only what differs.

struct KVBlockManager: Sendable {
    /// What a waiter would find and take: `hits` cached blocks to share, and how many of those are currently
    /// unreferenced (taking them removes them from the evictable capacity).
    struct Match: Sendable, Equatable {
        var hits: [Int32] = []
        var evictableHits = 0
        /// The block after the hits is being computed right now by a running sequence: waiting a step or two for it
        /// beats computing it twice.
        var nextIsPending = false
        /// A cached block whose first `tokens` rows hold exactly the K/V of the sequence's next rows after the hits:
        /// they are copied into the sequence's own block (never shared, so the source is never written).
        var partial: PartialHit?
    }

    struct PartialHit: Sendable, Equatable {
        var source: Int32
        var tokens: Int
    }

    /// Rows to copy from a cached block into a newly allocated one before the next step. The source is pinned (one
    /// reference) from allocation until the copy is done, so no allocation in between can evict it.
    struct RowCopy: Sendable, Equatable {
        var source: Int32
        var destination: Int32
        var tokens: Int
    }

    /// What a cached block holds: a partial block's seed is read row by row, so its tokens and parent are kept.
    private struct Content: Sendable {
        var parent: BlockHash
        var tokens: [Int32]
    }

    let total: Int
    let cachingEnabled: Bool
    let blockSize: Int
    private var refs: [Int32]
    /// The content hash of each block whose KV is complete and indexed.
    private var hashOf: [BlockHash?]
    /// Prompt scores of cached blocks a scoring job computed.
    private var scoresOf: [BlockScores?]
    private var index: [BlockHash: Int32] = [:]
    /// The tokens and parent of cached blocks registered with their content, and the blocks under each parent.
    private var contentOf: [Content?]
    private var children: [BlockHash: [Int32]] = [:]
    /// Copies allocated and not yet taken by the engine loop.
    private var copies: [RowCopy] = []
    /// Hashes a running sequence's own block will have once its prefill reaches the block's end.
    private var pendingOf: [BlockHash?]
    private var pending: [BlockHash: Int32] = [:]
    /// Never-cached (or evicted) blocks; used before any cached block is evicted.
    private var free: [Int32]
    private var evictable: EvictionQueue
    private(set) var evictions = 0
    /// Releases of a block nobody referenced: a bookkeeping bug, counted so tests can assert it never happens.
    private(set) var doubleReleases = 0

    init(total: Int, caching: Bool, blockSize: Int = 16) {
        self.total = total
        cachingEnabled = caching
        self.blockSize = blockSize
        contentOf = Array(repeating: nil, count: total)
        refs = Array(repeating: 0, count: total)
        hashOf = Array(repeating: nil, count: total)
        scoresOf = Array(repeating: nil, count: total)
        pendingOf = Array(repeating: nil, count: total)
        // Low ids first, so small tests see predictable tables.
        free = (0..<Int32(total)).reversed()
        evictable = EvictionQueue(capacity: total)
    }

    /// Blocks an admission may take: free ones plus cached ones nobody references.
    var available: Int { free.count + evictable.count }
    /// Cached blocks nobody references (evictable on demand).
    var cachedEvictable: Int { evictable.count }

    // MARK: Lookup

    /// The longest run of `hashes` (at most `limit` blocks) whose KV is cached; with `scoredTo`, only blocks that
    /// also carry prompt scores with at least that many alternatives. Given the sequence's `tokens` and its chain's
    /// `root`, also the cached block under the last hit sharing the most leading tokens with the next block (never
    /// reaching the last token, whose logits must be computed).
    func match(_ hashes: [BlockHash], limit: Int, scoredTo: Int? = nil, tokens: [Int32]? = nil,
               root: BlockHash? = nil) -> Match {
        var m = Match()
        guard cachingEnabled else { return m }
        for h in hashes.prefix(Swift.max(0, limit)) {
            guard let b = index[h] else {
                m.nextIsPending = pending[h] != nil
                break
            }
            if let top = scoredTo, (scoresOf[Int(b)]?.top ?? -1) < top { break }
            m.hits.append(b)
            if refs[Int(b)] == 0 { m.evictableHits += 1 }
        }
        if let tokens, let root, scoredTo == nil, !m.nextIsPending {
            let parent = m.hits.isEmpty ? root : hashes[m.hits.count - 1]
            let start = m.hits.count * blockSize
            m.partial = bestSeed(under: parent, for: tokens[start..<Swift.max(start, Swift.min(tokens.count - 1, start + blockSize))])
        }
        return m
    }

    /// The cached child of `parent` whose tokens start with the longest prefix of `next`.
    private func bestSeed(under parent: BlockHash, for next: ArraySlice<Int32>) -> PartialHit? {
        guard !next.isEmpty, let candidates = children[parent] else { return nil }
        var best: PartialHit?
        for b in candidates {
            guard let seed = contentOf[Int(b)]?.tokens else { continue }
            var n = 0
            for (t, u) in zip(seed, next) {
                guard t == u else { break }
                n += 1
            }
            if n > (best?.tokens ?? 0) { best = PartialHit(source: b, tokens: n) }
            if n == next.count { break }
        }
        return best
    }

    /// Capacity a sequence of `blocks` blocks takes when it starts from `match`.
    func cost(blocks: Int, match: Match) -> Int { blocks - match.hits.count + match.evictableHits }

    // MARK: Allocation

    /// A table of `blocks` ids starting with the matched ones, or nil if capacity is short. `hashes` are the
    /// sequence's known full-block hashes; the new blocks among them are marked pending so others can wait for them.
    /// A partial hit is taken only when pinning its source still leaves the allocation room: it is an optimisation
    /// and must never make a job that fits wait. Its copy is queued for `takeCopies`.
    mutating func allocate(blocks: Int, match: Match, hashes: [BlockHash] = []) -> [Int32]? {
        let cost = cost(blocks: blocks, match: match)
        guard cost <= available, match.hits.count <= blocks else { return nil }
        let seed = match.partial.flatMap { p in
            blocks > match.hits.count && cost + (refs[Int(p.source)] == 0 ? 1 : 0) <= available ? p : nil
        }
        var table = match.hits
        table.reserveCapacity(blocks)
        for b in match.hits + (seed.map { [$0.source] } ?? []) {
            if refs[Int(b)] == 0 { evictable.remove(b) }
            refs[Int(b)] += 1
        }
        while table.count < blocks {
            let b: Int32
            if let f = free.popLast() {
                b = f
            } else {
                b = evictable.popOldest()!
                forget(b)
                evictions += 1
            }
            refs[Int(b)] = 1
            let position = table.count
            if cachingEnabled, position < hashes.count, index[hashes[position]] == nil, pending[hashes[position]] == nil {
                pending[hashes[position]] = b
                pendingOf[Int(b)] = hashes[position]
            }
            table.append(b)
        }
        if let p = seed {
            copies.append(RowCopy(source: p.source, destination: table[match.hits.count], tokens: p.tokens))
        }
        return table
    }

    /// The copies allocations queued; the engine loop performs them, then releases each source's pin.
    mutating func takeCopies() -> [RowCopy] {
        defer { copies = [] }
        return copies
    }

    /// The rows a queued copy will give `destination`, or 0.
    func seededRows(of destination: Int32) -> Int {
        copies.last { $0.destination == destination }?.tokens ?? 0
    }

    /// The block's KV now holds the content `hash` names: index it, unless an equal block is already indexed (then
    /// this one stays private and is freed, not cached, when released). With its `parent` and `tokens` it can also
    /// seed other sequences' blocks; a partial block (fewer tokens than a block) is cached only that way.
    mutating func register(_ b: Int32, as hash: BlockHash, parent: BlockHash? = nil, tokens: ArraySlice<Int32>? = nil) {
        guard cachingEnabled, hashOf[Int(b)] == nil else { return }
        clearPending(b)
        guard index[hash] == nil else { return }
        index[hash] = b
        hashOf[Int(b)] = hash
        if let parent, let tokens, !tokens.isEmpty {
            contentOf[Int(b)] = Content(parent: parent, tokens: Array(tokens))
            children[parent, default: []].append(b)
        }
    }

    /// Keeps prompt scores with the indexed block of `hash` (equal content, equal scores), unless it has as many.
    mutating func attach(_ scores: BlockScores, to hash: BlockHash) {
        guard let b = index[hash], (scoresOf[Int(b)]?.top ?? -1) < scores.top else { return }
        scoresOf[Int(b)] = scores
    }

    func scores(of b: Int32) -> BlockScores? { scoresOf[Int(b)] }

    /// A suspended sequence will not compute its pending blocks soon: nobody should wait for them.
    mutating func abandonPending(_ table: [Int32]) {
        for b in table { clearPending(b) }
    }

    /// Drops one reference to each block of `table`. Leaf first, so a chain's deeper blocks are evicted before the
    /// blocks they extend (a parent's last release is never earlier than its children's).
    mutating func release(_ table: [Int32]) {
        for b in table.reversed() {
            guard b >= 0, Int(b) < total, refs[Int(b)] > 0 else {
                doubleReleases += 1
                continue
            }
            refs[Int(b)] -= 1
            guard refs[Int(b)] == 0 else { continue }
            clearPending(b)
            if hashOf[Int(b)] != nil { evictable.append(b) } else { free.append(b) }
        }
    }

    /// Capacity that would be available after releasing every table in `tables` (blocks they share with other
    /// sequences stay taken).
    func available(afterReleasing tables: [[Int32]]) -> Int {
        var drops: [Int32: Int32] = [:]
        for t in tables { for b in t { drops[b, default: 0] += 1 } }
        return available + drops.reduce(0) { $0 + (refs[Int($1.key)] == $1.value ? 1 : 0) }
    }

    private mutating func clearPending(_ b: Int32) {
        guard let h = pendingOf[Int(b)] else { return }
        pendingOf[Int(b)] = nil
        if pending[h] == b { pending[h] = nil }
    }

    private mutating func forget(_ b: Int32) {
        if let h = hashOf[Int(b)], index[h] == b { index[h] = nil }
        hashOf[Int(b)] = nil
        scoresOf[Int(b)] = nil
        if let parent = contentOf[Int(b)]?.parent {
            children[parent]?.removeAll { $0 == b }
            if children[parent]?.isEmpty == true { children[parent] = nil }
        }
        contentOf[Int(b)] = nil
    }

    // MARK: Inspection (tests)

    func references(_ b: Int32) -> Int { Int(refs[Int(b)]) }
    func isCached(_ b: Int32) -> Bool { hashOf[Int(b)] != nil }
    var evictionOrder: [Int32] { evictable.ordered }

    /// Broken invariants, empty when the books balance: every block is exactly one of referenced, free or evictable;
    /// evictable blocks are cached; the index points at blocks that carry its hash.
    func violations() -> [String] {
        var out: [String] = []
        var inFree = Array(repeating: false, count: total)
        for b in free {
            if inFree[Int(b)] { out.append("block \(b) free twice") }
            inFree[Int(b)] = true
        }
        for b in 0..<total {
            let id = Int32(b)
            let states = (refs[b] > 0 ? 1 : 0) + (inFree[b] ? 1 : 0) + (evictable.contains(id) ? 1 : 0)
            if states != 1 { out.append("block \(b): refs \(refs[b]), free \(inFree[b]), evictable \(evictable.contains(id))") }
            if evictable.contains(id) && hashOf[b] == nil { out.append("block \(b) evictable but not cached") }
            if inFree[b] && hashOf[b] != nil { out.append("block \(b) free but still cached") }
        }
        for (h, b) in index where hashOf[Int(b)] != h { out.append("index entry for block \(b) disagrees") }
        for b in 0..<total where contentOf[b] != nil && hashOf[b] == nil { out.append("block \(b) seeds but is not cached") }
        for (parent, list) in children {
            for b in list where contentOf[Int(b)]?.parent != parent { out.append("child entry for block \(b) disagrees") }
        }
        return out
    }
}
