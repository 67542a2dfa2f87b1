// The KV block manager alone: hash chains, hits, leaf-first LRU eviction, salt isolation, and a randomized run of
// references checked against an independent model of who holds what.
import Testing
@testable import Scheduling

private let root = BlockHash.root(model: "m", salt: nil)

private func hashes(_ tokens: [Int32], root: BlockHash = root) -> [BlockHash] {
    var out: [BlockHash] = []
    BlockHash.extend(&out, tokens: tokens, blockSize: 16, root: root)
    return out
}

private func tokens(_ count: Int, from start: Int32 = 0) -> [Int32] { (0..<count).map { start + Int32($0) } }

/// Allocates `blocks` for `t` from whatever is cached, then marks its full blocks computed (as a prefill would).
private func run(_ m: inout KVBlockManager, _ t: [Int32], blocks: Int) -> (table: [Int32], hits: Int)? {
    let h = hashes(t)
    let match = m.match(h, limit: (t.count - 1) / 16)
    guard let table = m.allocate(blocks: blocks, match: match, hashes: h) else { return nil }
    for (i, hash) in h.enumerated() { m.register(table[i], as: hash) }
    return (table, match.hits.count)
}

struct KVBlockManagerTests {
    @Test func equalPrefixesGiveEqualChainsAndADifferenceChangesEveryLaterBlock() {
        let a = tokens(64), b = tokens(64)
        var c = tokens(64)
        c[20] = 999  // inside block 1
        #expect(hashes(a) == hashes(b))
        let hc = hashes(c)
        #expect(hc[0] == hashes(a)[0])
        #expect(hc[1] != hashes(a)[1] && hc[2] != hashes(a)[2] && hc[3] != hashes(a)[3])
        // Only full blocks are hashed.
        #expect(hashes(tokens(47)).count == 2)
        // The same tokens in another position of the chain are another block.
        #expect(hashes(tokens(16, from: 16))[0] != hashes(a)[1])
    }

    @Test func theSaltAndTheModelEnterTheFirstBlock() {
        let t = tokens(32)
        let plain = hashes(t)
        let salted = hashes(t, root: BlockHash.root(model: "m", salt: "tenant-a"))
        let other = hashes(t, root: BlockHash.root(model: "m", salt: "tenant-b"))
        let empty = hashes(t, root: BlockHash.root(model: "m", salt: ""))
        let model = hashes(t, root: BlockHash.root(model: "n", salt: nil))
        #expect(Set([plain[0], salted[0], other[0], empty[0], model[0]]).count == 5)
        #expect(salted[1] != plain[1])
        #expect(salted == hashes(t, root: BlockHash.root(model: "m", salt: "tenant-a")))
    }

    @Test func aSaltedPromptFindsOnlyItsOwnSaltsBlocks() {
        var m = KVBlockManager(total: 16, caching: true)
        let t = tokens(40)
        let a = BlockHash.root(model: "m", salt: "a"), b = BlockHash.root(model: "m", salt: "b")
        var ha: [BlockHash] = [], hb: [BlockHash] = []
        BlockHash.extend(&ha, tokens: t, blockSize: 16, root: a)
        BlockHash.extend(&hb, tokens: t, blockSize: 16, root: b)
        let table = m.allocate(blocks: 3, match: m.match(ha, limit: 2), hashes: ha)!
        for i in 0..<2 { m.register(table[i], as: ha[i]) }
        m.release(table)
        #expect(m.match(ha, limit: 2).hits.count == 2)
        #expect(m.match(hb, limit: 2).hits.isEmpty)
        #expect(m.match(hashes(t), limit: 2).hits.isEmpty)
    }

    @Test func aSecondSequenceSharesTheCachedChainAndPaysOnlyForTheRest() {
        var m = KVBlockManager(total: 20, caching: true)
        let t = tokens(50)  // 3 full blocks, the last token in the 4th
        let first = run(&m, t, blocks: 5)!
        #expect(first.hits == 0)
        #expect(m.available == 15)
        // While the first runs, its blocks are referenced: sharing them costs nothing.
        let h = hashes(t)
        let match = m.match(h, limit: 3)
        #expect(match.hits == Array(first.table.prefix(3)) && match.evictableHits == 0)
        #expect(m.cost(blocks: 5, match: match) == 2)
        let second = m.allocate(blocks: 5, match: match, hashes: h)!
        #expect(Array(second.prefix(3)) == Array(first.table.prefix(3)))
        #expect(Set(second.suffix(2)).isDisjoint(with: first.table))
        #expect(m.references(first.table[0]) == 2)
        #expect(m.available == 13)
        m.release(first.table)
        m.release(second)
        // Whole again at idle; the three full blocks stay cached and count as available.
        #expect(m.available == 20 && m.cachedEvictable == 3)
        // A later hit on unreferenced blocks takes them out of the evictable capacity.
        let later = m.match(h, limit: 3)
        #expect(later.hits.count == 3 && later.evictableHits == 3 && m.cost(blocks: 5, match: later) == 5)
        #expect(m.violations().isEmpty && m.doubleReleases == 0)
    }

    @Test func theLastPromptTokenIsNeverTakenFromTheCache() {
        var m = KVBlockManager(total: 8, caching: true)
        let t = tokens(32)  // exactly two full blocks
        let first = run(&m, t, blocks: 3)!
        m.release(first.table)
        // (32 - 1) / 16 = 1: the second block holds the token whose logits are needed, so it is recomputed.
        #expect(run(&m, t, blocks: 3)!.hits == 1)
    }

    @Test func evictionTakesTheLeastRecentlyReleasedLeafFirst() {
        var m = KVBlockManager(total: 6, caching: true)
        let a = run(&m, tokens(49, from: 0), blocks: 3)!      // blocks a0 a1 a2 (all full), released first
        m.release(a.table)
        let b = run(&m, tokens(33, from: 1000), blocks: 3)!   // b0 b1 full, b2 partial (not cached)
        m.release(b.table)
        // Release order, each chain leaf first: a2 a1 a0, then b1 b0.
        #expect(m.evictionOrder == [a.table[2], a.table[1], a.table[0], b.table[1], b.table[0]])
        #expect(m.cachedEvictable == 5 && m.available == 6)
        // One uncached free block is used before any eviction; then the oldest leaf goes.
        let c = m.allocate(blocks: 2, match: .init())!
        #expect(c.contains(b.table[2]) && c.contains(a.table[2]))
        #expect(m.evictions == 1)
        // a's chain lost its leaf only: its first two blocks still hit.
        #expect(m.match(hashes(tokens(49, from: 0)), limit: 3).hits == Array(a.table.prefix(2)))
        m.release(c)
        #expect(m.violations().isEmpty)
    }

    @Test func aHitRefreshesItsChainSoAnotherIsEvictedFirst() {
        var m = KVBlockManager(total: 5, caching: true)
        let x = tokens(33, from: 0), y = tokens(33, from: 500)
        let a = run(&m, x, blocks: 2)!
        m.release(a.table)
        let b = run(&m, y, blocks: 2)!
        m.release(b.table)
        // x is older, but taking it again makes y the least recently used.
        let again = run(&m, x, blocks: 3)!
        #expect(again.hits == 2)
        m.release(again.table)
        #expect(m.evictionOrder.prefix(2) == [b.table[1], b.table[0]])
    }

    @Test func anEqualBlockComputedTwiceStaysPrivateAndIsFreedNotCached() {
        var m = KVBlockManager(total: 8, caching: true)
        let t = tokens(20)
        let h = hashes(t)
        let p = m.allocate(blocks: 2, match: .init(), hashes: h)!
        let q = m.allocate(blocks: 2, match: .init(), hashes: h)!
        m.register(p[0], as: h[0])
        m.register(q[0], as: h[0])
        #expect(m.isCached(p[0]) && !m.isCached(q[0]))
        m.release(q)
        m.release(p)
        #expect(m.cachedEvictable == 1 && m.available == 8)
        #expect(m.violations().isEmpty)
    }

    @Test func aBlockBeingComputedMakesAWaiterWaitUntilItIsIndexedOrAbandoned() {
        var m = KVBlockManager(total: 8, caching: true)
        let t = tokens(40)
        let h = hashes(t)
        let p = m.allocate(blocks: 3, match: m.match(h, limit: 2), hashes: h)!
        #expect(m.match(h, limit: 2).nextIsPending)
        m.register(p[0], as: h[0])
        let after = m.match(h, limit: 2)
        #expect(after.hits == [p[0]] && after.nextIsPending)
        m.abandonPending(p)
        #expect(!m.match(h, limit: 2).nextIsPending)
        m.release(p)
        #expect(m.violations().isEmpty)
    }

    @Test func withCachingOffNothingIsIndexedOrFound() {
        var m = KVBlockManager(total: 4, caching: false)
        let t = tokens(40)
        let first = run(&m, t, blocks: 3)!
        m.release(first.table)
        #expect(run(&m, t, blocks: 3)!.hits == 0)
        #expect(m.cachedEvictable == 0)
    }

    /// Random allocations over a few shared documents, partial prefills, suspensions and releases in random order,
    /// on a pool small enough to evict constantly. After every operation each block's count equals the number of
    /// live tables holding it, a block in two tables is a cached one, and the books balance; at the end every block
    /// came back exactly once.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func randomizedReferenceCounts(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let total = 24
        var m = KVBlockManager(total: total, caching: true)
        let documents: [[Int32]] = (0..<3).map { d in (0..<120).map { Int32(d * 1000 + $0) } }
        var live: [(table: [Int32], hashes: [BlockHash], computed: Int)] = []
        var allocations = 0, hits = 0
        for _ in 0..<600 {
            switch rng.next(5) {
            case 0, 1:
                var t = Array(documents[rng.next(3)].prefix(1 + rng.next(120)))
                if rng.next(4) == 0 { t[t.count / 2] = -1 }  // a divergent copy
                let h = hashes(t)
                let blocks = (t.count + 15) / 16 + rng.next(3)
                let match = m.match(h, limit: (t.count - 1) / 16)
                let fits = m.cost(blocks: blocks, match: match) <= m.available
                let table = m.allocate(blocks: blocks, match: match, hashes: h)
                #expect((table != nil) == fits)
                if let table {
                    #expect(Array(table.prefix(match.hits.count)) == match.hits)
                    live.append((table, h, match.hits.count))
                    allocations += 1
                    hits += match.hits.count
                }
            case 2 where !live.isEmpty:
                // Prefill advances: the next full blocks become computed.
                let i = rng.next(live.count)
                let upTo = Swift.min(live[i].hashes.count, live[i].computed + 1 + rng.next(3))
                for b in live[i].computed..<upTo { m.register(live[i].table[b], as: live[i].hashes[b]) }
                live[i].computed = Swift.max(live[i].computed, upTo)
            case 3 where !live.isEmpty:
                m.abandonPending(live[rng.next(live.count)].table)
            default:
                guard !live.isEmpty else { continue }
                m.release(live.remove(at: rng.next(live.count)).table)
            }
            var holders: [Int32: Int] = [:]
            for l in live {
                #expect(Set(l.table).count == l.table.count)
                for b in l.table { holders[b, default: 0] += 1 }
            }
            for b in 0..<Int32(total) {
                #expect(m.references(b) == holders[b, default: 0])
                if holders[b, default: 0] > 1 { #expect(m.isCached(b)) }
            }
            #expect(m.available == total - holders.count)
            #expect(m.violations().isEmpty)
        }
        while let l = live.popLast() { m.release(l.table) }
        #expect(m.available == total && m.doubleReleases == 0 && m.violations().isEmpty)
        #expect(allocations > 50 && hits > 0 && m.evictions > 0)
    }
}

/// A small deterministic generator, so a failing seed replays.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 }
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
