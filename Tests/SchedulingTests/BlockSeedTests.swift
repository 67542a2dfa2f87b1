// Seeding a sequence's own block from a cached block's leading rows: which block is chosen, that its source is
// pinned until copied, and that the books still balance.
import Testing
@testable import Scheduling

private let root = BlockHash.root(model: "m", salt: nil)

private func chain(_ tokens: [Int32], root: BlockHash = root) -> [BlockHash] {
    var out: [BlockHash] = []
    BlockHash.extend(&out, tokens: tokens, blockSize: 16, root: root)
    return out
}

/// Caches `t`'s full blocks and its last partial block (as a finished sequence leaves them), returning its table.
private func leave(_ m: inout KVBlockManager, _ t: [Int32], root r: BlockHash = root) -> [Int32] {
    let h = chain(t, root: r)
    let table = m.allocate(blocks: (t.count + 15) / 16, match: m.match(h, limit: (t.count - 1) / 16), hashes: h)!
    for (i, hash) in h.enumerated() {
        m.register(table[i], as: hash, parent: i == 0 ? r : h[i - 1], tokens: t[(i * 16)..<((i + 1) * 16)])
    }
    if t.count % 16 > 0 {
        let k = t.count / 16, parent = k == 0 ? r : h[k - 1]
        let rows = t[(k * 16)...]
        m.register(table[k], as: parent.child(rows), parent: parent, tokens: rows)
    }
    _ = m.takeCopies().map { m.release([$0.source]) }
    m.release(table)
    return table
}

struct BlockSeedTests {
    @Test func aPromptRepeatingACachedOneSeedsItsTailUpToTheLastToken() {
        var m = KVBlockManager(total: 16, caching: true)
        let t = (0..<30).map { Int32($0) }
        let cached = leave(&m, t)
        #expect(m.cachedEvictable == 2)
        let h = chain(t)
        let match = m.match(h, limit: 29 / 16, tokens: t, root: root)
        #expect(match.hits == [cached[0]])
        // Rows 16..<29 are seeded; row 29 (the last token) is fed for its logits.
        #expect(match.partial == .init(source: cached[1], tokens: 13))
        let table = m.allocate(blocks: 3, match: match, hashes: h)!
        #expect(m.seededRows(of: table[1]) == 13)
        let copies = m.takeCopies()
        #expect(copies == [.init(source: cached[1], destination: table[1], tokens: 13)])
        // Pinned until copied: not evictable, so no allocation in between can take it.
        #expect(m.references(cached[1]) == 1 && m.cachedEvictable == 0)
        for c in copies { m.release([c.source]) }
        #expect(m.cachedEvictable == 1 && m.violations().isEmpty)
        m.release(table)
        #expect(m.available == 16 && m.violations().isEmpty)
    }

    @Test func theLongestSharedLeadWinsAndADivergingTokenStopsIt() {
        var m = KVBlockManager(total: 16, caching: true)
        let a = (0..<10).map { Int32($0) }
        var b = a
        b[4] = 99
        _ = leave(&m, b)
        let best = leave(&m, a)
        var next = a + [50, 51]
        next[7] = 77
        let match = m.match(chain(next), limit: 0, tokens: next, root: root)
        #expect(match.partial == .init(source: best[0], tokens: 7))
        // Another salt's chain starts from another root: nothing to seed from.
        let salted = BlockHash.root(model: "m", salt: "x")
        #expect(m.match(chain(next, root: salted), limit: 0, tokens: next, root: salted).partial == nil)
    }

    @Test func aFullBlockWhoseLaterTokensDifferSeedsTheRowsBeforeTheDifference() {
        var m = KVBlockManager(total: 16, caching: true)
        let t = (0..<40).map { Int32($0) }
        let cached = leave(&m, t)
        var u = t
        u[20] = 1000  // inside block 1, which then is no hit
        let match = m.match(chain(u), limit: 39 / 16, tokens: u, root: root)
        #expect(match.hits == [cached[0]])
        #expect(match.partial == .init(source: cached[1], tokens: 4))
    }

    @Test func noSeedWithoutRoomForThePinOrForScoringOrWithTheCacheOff() {
        var m = KVBlockManager(total: 2, caching: true)
        let t = (0..<20).map { Int32($0) }
        let cached = leave(&m, t)
        #expect(m.available == 2 && m.cachedEvictable == 2)
        let match = m.match(chain(t), limit: 1, tokens: t, root: root)
        #expect(match.partial?.source == cached[1])
        // Two blocks: the hit plus one new one use all the capacity, so pinning the seed's source would not fit.
        let table = m.allocate(blocks: 2, match: match, hashes: chain(t))!
        #expect(m.takeCopies().isEmpty && m.violations().isEmpty)
        m.release(table)
        #expect(m.match(chain(t), limit: 1, scoredTo: 5, tokens: t, root: root).partial == nil)
        var off = KVBlockManager(total: 4, caching: false)
        _ = leave(&off, t)
        #expect(off.match(chain(t), limit: 1, tokens: t, root: root).partial == nil)
    }

    @Test func anEvictedSeedIsForgottenWithItsBlock() {
        var m = KVBlockManager(total: 2, caching: true)
        let t = (0..<10).map { Int32($0) }
        _ = leave(&m, t)
        #expect(m.match([], limit: 0, tokens: t, root: root).partial != nil)
        let other = m.allocate(blocks: 2, match: .init())!
        #expect(m.evictions == 1)
        m.release(other)
        #expect(m.match([], limit: 0, tokens: t, root: root).partial == nil)
        #expect(m.violations().isEmpty)
    }
}
