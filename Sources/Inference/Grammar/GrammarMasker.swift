// Token masks for a compiled grammar over one vocabulary: a preorder walk of the vocabulary trie that drops a whole
// subtree at the first byte the matcher rejects, a cache of masks per matcher position, and the budget rule that
// keeps a complete answer reachable within max_tokens.
import Locks

/// Binds a `CompiledGrammar` to a `TokenVocabulary`; shared by every sequence using that grammar (thread-safe).
///
/// Masks are cached by matcher position (most JSON positions repeat: inside a string, after a comma, …). The budget
/// rule: `minimumTokens(from:)` is an upper bound on the tokens needed to complete from a position (the greedy
/// longest-match tokenization of a canonical shortest completion, never more than its byte count). When the
/// remaining budget comes close, a token stays allowed only if that bound after it still fits what is left; the
/// first token of the canonical completion always does, so a complete answer is always reachable.
public final class GrammarMasker: Sendable {
    public let grammar: CompiledGrammar
    public let vocabulary: TokenVocabulary

    struct Entry: Sendable {
        var mask: TokenMask
        /// The largest shortest-completion length in bytes over the allowed tokens' successors: when the budget
        /// after this token is at least this, the budget cannot bind and the cached mask is the answer.
        var maxBytesAfter: Int
        /// The largest token bound (`minimumTokens`) over the allowed tokens' successors, found the first time a
        /// budget comes within `maxBytesAfter`: a budget at least this cannot bind either. Nil until then.
        var maxTokensAfter: Int?
    }

    private let cache: Locked<[GrammarMatcher: Entry]>
    private let cacheLimit: Int
    private let counters = Locked<(hits: Int, misses: Int, budgeted: Int)>((0, 0, 0))

    public init(grammar: CompiledGrammar, vocabulary: TokenVocabulary, cacheLimit: Int = 512) {
        self.grammar = grammar
        self.vocabulary = vocabulary
        self.cacheLimit = cacheLimit
        cache = Locked([:])
    }

    /// A fresh per-sequence constraint at the grammar's start.
    public func start() -> GrammarConstraint { GrammarConstraint(masker: self) }

    /// Cache hits, misses, and budget-bound walks so far (tests and the bench read them).
    public var statistics: (hits: Int, misses: Int, budgeted: Int) { counters.withLock { $0 } }

    /// The tokens that may follow `matcher`. With `remaining` (tokens left, this one included), only tokens after
    /// which a completion still fits in `remaining - 1` tokens; end-of-generation tokens exactly when complete.
    public func mask(for matcher: GrammarMatcher, remaining: Int? = nil) -> TokenMask {
        let entry: Entry
        if let hit = cache.withLock({ $0[matcher] }) {
            counters.withLock { $0.hits += 1 }
            entry = hit
        } else {
            counters.withLock { $0.misses += 1 }
            entry = walk(matcher, budget: nil)
            cache.withLock { c in
                if c.count >= cacheLimit { c.removeAll(keepingCapacity: true) }
                c[matcher] = entry
            }
        }
        guard let remaining, remaining - 1 < entry.maxBytesAfter else { return entry.mask }
        // Bytes overstate tokens several times over, so the token bound usually shows the budget still cannot
        // bind; it is found once per position and kept with the cached mask.
        var tokensAfter = entry.maxTokensAfter
        if tokensAfter == nil {
            let counted = walk(matcher, budget: nil, countTokens: true).maxTokensAfter ?? Int.max
            tokensAfter = counted
            cache.withLock { c in c[matcher]?.maxTokensAfter = counted }
        }
        if remaining - 1 >= tokensAfter! { return entry.mask }
        counters.withLock { $0.budgeted += 1 }
        return walk(matcher, budget: remaining - 1).mask
    }

    /// An upper bound on the tokens that complete the text from `matcher` (0 when complete; nil: cannot complete).
    public func minimumTokens(from matcher: GrammarMatcher) -> Int? {
        guard let bytes = matcher.shortestCompletionLength else { return nil }
        if bytes == 0 { return 0 }
        var best = bytes
        for completion in matcher.shortestCompletions() {
            if let n = vocabulary.greedyTokenCount(completion), n < best { best = n }
        }
        return best
    }

    /// A looser bound than `minimumTokens` from one thread's completion only (the shortest): enough to show that a
    /// budget cannot bind, at a fraction of the cost when many threads are alive.
    func tokenUpperBound(from matcher: GrammarMatcher) -> Int? {
        guard let bytes = matcher.shortestCompletionLength else { return nil }
        if bytes == 0 { return 0 }
        let g = matcher.grammar
        var best: GrammarMatcher.Thread?
        var bestDistance = Int.max
        for t in matcher.threads {
            var d = Int(g.distance[Int(t.node)])
            for r in t.stack { d += Int(g.distance[Int(r)]) }
            if d < bestDistance { bestDistance = d; best = t }
        }
        guard let best, let completion = g.shortestCompletion(from: best) else { return bytes }
        return min(bytes, vocabulary.greedyTokenCount(completion) ?? bytes)
    }

    /// The fewest tokens of a whole answer by the same bound: a `max_tokens` below it cannot be honoured.
    public var minimumAnswerTokens: Int? { minimumTokens(from: GrammarMatcher(grammar)) }

    /// Where the walk stands below one trie node: a state of the walk's local automaton (the common case), or a
    /// full matcher once the bytes reach a rule call or a rule's end.
    private enum Position {
        case local(Int32)
        case matcher(GrammarMatcher)
    }

    /// The mask from `matcher`: with `budget`, only tokens whose successor's token bound fits it; with
    /// `countTokens`, also the largest such bound over the allowed tokens.
    private func walk(_ matcher: GrammarMatcher, budget: Int?, countTokens: Bool = false) -> Entry {
        let v = vocabulary
        var mask = TokenMask(count: v.size)
        if matcher.isComplete { for t in v.endOfGeneration { mask.insert(t) } }
        var maxBytes = 0
        guard matcher.canContinue else { return Entry(mask: mask, maxBytesAfter: 0, maxTokensAfter: 0) }
        var local = LocalAutomaton(matcher)
        var maxTokens = 0
        var states = [Position](repeating: local == nil ? .matcher(matcher) : .local(0), count: v.longestToken + 1)
        let n = v.nodeCount
        var i = 1
        while i < n {
            let d = Int(v.depth[i])
            let b = v.byte[i]
            var next: Position?
            switch states[d - 1] {
            case .local(let q):
                let t = local!.step(q, b)
                if t >= 0 {
                    next = .local(t)
                } else if t == LocalAutomaton.leaves {
                    next = local!.matcher(q).advanced(by: b).map { .matcher($0) }
                }
            case .matcher(let m):
                next = m.advanced(by: b).map { .matcher($0) }
            }
            guard let s = next else {
                i += Int(v.subtreeSize[i])
                continue
            }
            let first = Int(v.tokenStart[i]), end = Int(v.tokenStart[i + 1])
            if first < end {
                let bytes: Int
                switch s {
                case .local(let q): bytes = local!.shortest(q)
                case .matcher(let m): bytes = m.shortestCompletionLength ?? Int.max
                }
                var allowed = true
                var tokens: Int?
                if let budget, bytes > budget {
                    switch s {
                    case .local(let q): tokens = local!.tokenBound(q, self)
                    case .matcher(let m): tokens = minimumTokens(from: m) ?? Int.max
                    }
                    allowed = tokens! <= budget
                }
                if allowed {
                    for k in first..<end { mask.insert(v.tokenList[k]) }
                    maxBytes = Swift.max(maxBytes, bytes)
                    if countTokens {
                        // Only for the skip decision: any upper bound of the token bound will do there.
                        if tokens == nil {
                            switch s {
                            case .local(let q): tokens = local!.tokenBound(q, self)
                            case .matcher(let m): tokens = tokenUpperBound(from: m) ?? Int.max
                            }
                        }
                        maxTokens = Swift.max(maxTokens, tokens!)
                    }
                }
            }
            if d < states.count { states[d] = s }
            i += 1
        }
        return Entry(mask: mask, maxBytesAfter: maxBytes, maxTokensAfter: countTokens ? maxTokens : nil)
    }
}

/// A deterministic automaton built lazily during one mask walk, over the positions reachable from the walk's start
/// by bytes that neither call a rule nor end one (inside a string, a number, a pattern: most of any JSON text). Its
/// states are sets of reading nodes sharing the start's one stack, so a step is a table lookup instead of a new
/// matcher; a byte that reaches a call or an end leaves it for the full matcher.
private struct LocalAutomaton {
    static let dead: Int32 = -1
    static let leaves: Int32 = -2
    private static let unknown: Int32 = -3

    let grammar: CompiledGrammar
    let stack: [Int32]
    /// Bytes the stack's return nodes need to finish, added to each state's own shortest distance.
    let stackDistance: Int
    private var states: [[Int32]] = []
    private var index: [[Int32]: Int32] = [:]
    private var transitions: [Int32] = []
    private var shortestBytes: [Int] = []
    /// `minimumTokens` by state, found when first needed (-1: not yet).
    private var tokenBounds: [Int] = []

    /// Nil when the threads do not share one stack (the full matcher handles that) or the start is complete.
    init?(_ matcher: GrammarMatcher) {
        guard let first = matcher.threads.first, !matcher.isComplete,
              matcher.threads.allSatisfy({ $0.stack == first.stack }) else { return nil }
        grammar = matcher.grammar
        stack = first.stack
        var total = 0
        for r in stack {
            let d = grammar.distance[Int(r)]
            if d == Int32.max { total = Int.max; break }
            total += Int(d)
        }
        stackDistance = total
        _ = add(matcher.threads.map(\.node))
    }

    private mutating func add(_ nodes: [Int32]) -> Int32 {
        if let q = index[nodes] { return q }
        let q = Int32(states.count)
        states.append(nodes)
        index[nodes] = q
        transitions.append(contentsOf: repeatElement(Self.unknown, count: 256))
        var best = Int.max
        for node in nodes {
            let d = grammar.distance[Int(node)]
            if d != Int32.max, stackDistance != Int.max { best = Swift.min(best, Int(d) + stackDistance) }
        }
        shortestBytes.append(best)
        tokenBounds.append(-1)
        return q
    }

    /// The state after byte `b`, or `dead`, or `leaves` when the full matcher must take over.
    mutating func step(_ q: Int32, _ b: UInt8) -> Int32 {
        let slot = Int(q) * 256 + Int(b)
        let known = transitions[slot]
        if known != Self.unknown { return known }
        var next: [Int32] = []
        var result: Int32?
        for node in states[Int(q)] {
            for e in grammar.byteEdges[Int(node)] where e.lo <= b && b <= e.hi {
                let c = grammar.closures[Int(e.target)]
                guard c.simple else {
                    result = Self.leaves
                    break
                }
                next.append(contentsOf: c.reading)
            }
            if result != nil { break }
        }
        if result == nil {
            if next.isEmpty {
                result = Self.dead
            } else {
                next.sort()
                var w = 1
                for k in 1..<next.count where next[k] != next[w - 1] {
                    next[w] = next[k]
                    w += 1
                }
                next.removeLast(next.count - w)
                result = next.count > GrammarMatcher.threadLimit ? Self.leaves : add(next)
            }
        }
        transitions[slot] = result!
        return result!
    }

    /// The masker's token bound at state `q`, computed once.
    mutating func tokenBound(_ q: Int32, _ masker: GrammarMasker) -> Int {
        let known = tokenBounds[Int(q)]
        if known >= 0 { return known }
        let n = masker.minimumTokens(from: matcher(q)) ?? Int.max
        tokenBounds[Int(q)] = n
        return n
    }

    /// Fewest bytes that complete the text from state `q`.
    func shortest(_ q: Int32) -> Int { shortestBytes[Int(q)] }

    /// The full matcher at state `q`.
    func matcher(_ q: Int32) -> GrammarMatcher {
        GrammarMatcher(grammar: grammar, sortedThreads: states[Int(q)].map { GrammarMatcher.Thread(stack: stack, node: $0) },
                       isComplete: false)
    }
}

/// One sequence's grammar constraint: the shared masker and this sequence's matcher. Copy it per choice.
public struct GrammarConstraint: TokenConstraint {
    public let masker: GrammarMasker
    public private(set) var matcher: GrammarMatcher

    public init(masker: GrammarMasker) {
        self.masker = masker
        matcher = GrammarMatcher(masker.grammar)
    }

    public mutating func allowedTokens(remaining: Int) -> TokenMask? {
        masker.mask(for: matcher, remaining: remaining)
    }

    /// End-of-generation tokens leave the matcher as it is; any other token must be one the mask allowed.
    public mutating func accept(_ token: Int32) {
        guard let bytes = masker.vocabulary.bytes(of: token) else { return }
        let ok = matcher.advance(bytes)
        assert(ok, "token \(token) was not allowed by the grammar")
    }

    public var isFinished: Bool { matcher.isComplete && !matcher.canContinue }
}
