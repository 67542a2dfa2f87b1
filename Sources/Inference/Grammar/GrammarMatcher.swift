// One sequence's position in a compiled grammar: the set of pushdown threads still alive after the bytes so far.
// A value: copy it to try bytes without committing, keep it to continue.

/// Where a sequence is in its grammar. Hashable, so equal positions share one cached token mask.
///
/// ```swift
/// var m = GrammarMatcher(grammar)
/// m.accepts(Array("{\"a\"".utf8))   // true: a prefix of some valid text
/// m.advance(Array("{".utf8))        // false leaves `m` unchanged
/// m.isComplete                      // the bytes so far are a whole valid text
/// m.canContinue                     // some byte may still follow
/// ```
public struct GrammarMatcher: Hashable, Sendable {
    /// One path through the pushdown automaton: the node about to read, and the return nodes of the rules it is in.
    struct Thread: Hashable, Sendable, Comparable {
        var stack: [Int32]
        var node: Int32

        static func < (a: Thread, b: Thread) -> Bool {
            if a.node != b.node { return a.node < b.node }
            if a.stack.count != b.stack.count { return a.stack.count < b.stack.count }
            for (x, y) in zip(a.stack, b.stack) where x != y { return x < y }
            return false
        }
    }

    public let grammar: CompiledGrammar
    private(set) var threads: [Thread]
    /// The bytes so far are a complete text of the root rule.
    public private(set) var isComplete: Bool

    /// A cap on simultaneous paths, so a pathologically ambiguous grammar costs bounded time per byte.
    static let threadLimit = 512

    public init(_ grammar: CompiledGrammar) {
        self.grammar = grammar
        var threads: [Thread] = []
        var complete = false
        var expander = Expander(grammar: grammar)
        expander.expand(stack: [], node: grammar.ruleStarts[Int(grammar.rootRule)], into: &threads, complete: &complete)
        self.threads = Self.normalize(threads)
        isComplete = complete
    }

    /// A position given by its threads, which must already be sorted and distinct.
    init(grammar: CompiledGrammar, sortedThreads: [Thread], isComplete: Bool) {
        self.grammar = grammar
        threads = sortedThreads
        self.isComplete = isComplete
    }

    /// Some byte may still follow (false once the text is complete and nothing can extend it, or on a dead end).
    public var canContinue: Bool { !threads.isEmpty }

    /// Neither complete nor continuable: the bytes so far are not a prefix of any valid text.
    public var isDead: Bool { threads.isEmpty && !isComplete }

    public static func == (a: GrammarMatcher, b: GrammarMatcher) -> Bool {
        a.grammar === b.grammar && a.isComplete == b.isComplete && a.threads == b.threads
    }

    public func hash(into h: inout Hasher) {
        h.combine(isComplete)
        h.combine(threads)
    }

    /// Whether `bytes` can follow: they are a prefix of a valid continuation (the empty array always can).
    public func accepts(_ bytes: [UInt8]) -> Bool {
        var copy = self
        return copy.advance(bytes)
    }

    /// Consumes `bytes` if they can follow; returns false and leaves the matcher unchanged otherwise.
    @discardableResult
    public mutating func advance(_ bytes: [UInt8]) -> Bool {
        var current = self
        for b in bytes {
            guard let next = current.advanced(by: b) else { return false }
            current = next
        }
        self = current
        return true
    }

    /// The matcher after one more byte, or nil when the byte cannot follow.
    public func advanced(by byte: UInt8) -> GrammarMatcher? {
        let g = grammar
        var next: [Thread] = []
        var complete = false
        var expander = Expander(grammar: g)
        for t in threads {
            for e in g.byteEdges[Int(t.node)] where e.lo <= byte && byte <= e.hi {
                let c = g.closures[Int(e.target)]
                if c.simple {
                    for r in c.reading { next.append(Thread(stack: t.stack, node: r)) }
                } else {
                    expander.expand(stack: t.stack, node: e.target, into: &next, complete: &complete)
                }
            }
        }
        if next.isEmpty && !complete { return nil }
        var m = self
        m.threads = Self.normalize(next)
        m.isComplete = complete
        return m
    }

    private static func normalize(_ threads: [Thread]) -> [Thread] {
        guard threads.count > 1 else { return threads }
        var sorted = threads.sorted()
        var w = 1
        for i in 1..<sorted.count where sorted[i] != sorted[w - 1] {
            sorted[w] = sorted[i]
            w += 1
        }
        sorted.removeLast(sorted.count - w)
        if sorted.count > threadLimit { sorted.removeLast(sorted.count - threadLimit) }
        return sorted
    }

    // MARK: Shortest completion

    /// Fewest bytes that complete the text from here (0 when complete; nil on a dead end).
    public var shortestCompletionLength: Int? {
        if isComplete { return 0 }
        var best: Int?
        for t in threads {
            var d = Int(grammar.distance[Int(t.node)])
            for r in t.stack { d += Int(grammar.distance[Int(r)]) }
            if best == nil || d < best! { best = d }
        }
        return best
    }

    /// The canonical shortest completions' bytes, one per thread that has one (empty array when complete). Each is
    /// the suffix of the one its thread had before the last byte, which keeps the budget rule consistent from step
    /// to step.
    func shortestCompletions() -> [[UInt8]] {
        if isComplete { return [[]] }
        return threads.compactMap { grammar.shortestCompletion(from: $0) }
    }
}

extension CompiledGrammar {
    /// Follows the canonical shortest steps from a thread to the end of the root rule.
    func shortestCompletion(from thread: GrammarMatcher.Thread) -> [UInt8]? {
        var stack = thread.stack
        var node = thread.node
        var out: [UInt8] = []
        var guardSteps = 0
        while true {
            guardSteps += 1
            if guardSteps > 10_000_000 { return nil }
            switch shortestStep[Int(node)] {
            case .byte(let b, let to):
                out.append(b)
                node = to
            case .skip(let to):
                node = to
            case .call(let c):
                stack.append(c.ret)
                node = ruleStarts[Int(c.rule)]
            case .end:
                guard let r = stack.popLast() else { return out }
                node = r
            case .none:
                return nil
            }
        }
    }
}

/// Follows moves that read nothing (into called rules, out of finished ones) to the nodes that read next. A visited
/// set stops the cycles a nullable rule inside a loop would otherwise make.
struct Expander {
    let grammar: CompiledGrammar
    private var visited: Set<GrammarMatcher.Thread> = []

    init(grammar: CompiledGrammar) { self.grammar = grammar }

    mutating func expand(stack: [Int32], node: Int32, into out: inout [GrammarMatcher.Thread], complete: inout Bool) {
        guard visited.insert(GrammarMatcher.Thread(stack: stack, node: node)).inserted else { return }
        let c = grammar.closures[Int(node)]
        for r in c.reading { out.append(GrammarMatcher.Thread(stack: stack, node: r)) }
        if stack.count < 4096 {
            for call in c.calls {
                var deeper = stack
                deeper.append(call.ret)
                expand(stack: deeper, node: grammar.ruleStarts[Int(call.rule)], into: &out, complete: &complete)
            }
        }
        if c.ends {
            if stack.isEmpty {
                complete = true
            } else {
                var outer = stack
                let ret = outer.removeLast()
                expand(stack: outer, node: ret, into: &out, complete: &complete)
            }
        }
    }
}
