// Token masks for a compiled grammar over one vocabulary: a preorder walk of the vocabulary trie that drops a whole
// subtree at the first byte the matcher rejects, a cache of masks per matcher position, and the budget rule that
// keeps a complete answer reachable within max_tokens.
import Synchronization

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
    }

    private let cache: Mutex<[GrammarMatcher: Entry]>
    private let cacheLimit: Int
    private let counters = Mutex<(hits: Int, misses: Int, budgeted: Int)>((0, 0, 0))

    public init(grammar: CompiledGrammar, vocabulary: TokenVocabulary, cacheLimit: Int = 512) {
        self.grammar = grammar
        self.vocabulary = vocabulary
        self.cacheLimit = cacheLimit
        cache = Mutex([:])
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

    /// The fewest tokens of a whole answer by the same bound: a `max_tokens` below it cannot be honoured.
    public var minimumAnswerTokens: Int? { minimumTokens(from: GrammarMatcher(grammar)) }

    private func walk(_ matcher: GrammarMatcher, budget: Int?) -> Entry {
        let v = vocabulary
        var mask = TokenMask(count: v.size)
        if matcher.isComplete { for t in v.endOfGeneration { mask.insert(t) } }
        var maxBytes = 0
        guard matcher.canContinue else { return Entry(mask: mask, maxBytesAfter: 0) }
        var states = [GrammarMatcher](repeating: matcher, count: v.longestToken + 1)
        let n = v.nodeCount
        var i = 1
        while i < n {
            let d = Int(v.depth[i])
            guard let s = states[d - 1].advanced(by: v.byte[i]) else {
                i += Int(v.subtreeSize[i])
                continue
            }
            let first = Int(v.tokenStart[i]), end = Int(v.tokenStart[i + 1])
            if first < end {
                let bytes = s.shortestCompletionLength ?? Int.max
                var allowed = true
                if let budget, bytes > budget {
                    allowed = (minimumTokens(from: s) ?? Int.max) <= budget
                }
                if allowed {
                    for k in first..<end { mask.insert(v.tokenList[k]) }
                    maxBytes = Swift.max(maxBytes, bytes)
                }
            }
            if d < states.count { states[d] = s }
            i += 1
        }
        return Entry(mask: mask, maxBytesAfter: maxBytes)
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
