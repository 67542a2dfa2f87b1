// A grammar compiled once into a recursive transition network over bytes: one small NFA per rule whose edges read a
// byte range, move without input, or call another rule. `GrammarMatcher` runs it as a pushdown automaton.

/// The automaton of a `Grammar`, immutable and shared by every sequence (and request) that uses it.
/// Compile once per schema; `GrammarMatcher(grammar)` starts a sequence, `GrammarMasker` binds it to a vocabulary.
public final class CompiledGrammar: Sendable {
    struct ByteEdge: Sendable {
        var lo: UInt8
        var hi: UInt8
        var target: Int32
    }

    struct Call: Sendable, Hashable {
        var rule: Int32
        var ret: Int32
    }

    /// Where a node leads without reading: the nodes that read next, the calls it makes, whether its rule can end.
    struct Closure: Sendable {
        var reading: [Int32] = []
        var calls: [Call] = []
        var ends = false
        /// Only `reading`: the matcher's fast path.
        var simple: Bool { calls.isEmpty && !ends }
    }

    let byteEdges: [[ByteEdge]]
    let closures: [Closure]
    let ruleStarts: [Int32]
    let ruleNames: [String]
    let rootRule: Int32
    /// Fewest bytes from each node to the end of its rule (Int32.max: never).
    let distance: [Int32]
    /// The first step of the canonical shortest path from each node: `.byte(b, to)`, `.skip(to)`, `.call(c)`, `.end`.
    let shortestStep: [ShortestStep]
    /// Fewest bytes of a whole answer.
    public let minimumLength: Int

    enum ShortestStep: Sendable {
        case byte(UInt8, Int32)
        case skip(Int32)
        case call(Call)
        case end
        case none
    }

    public var nodeCount: Int { byteEdges.count }

    public init(_ grammar: Grammar) throws(GrammarError) {
        var builder = NFABuilder(grammar: grammar)
        try builder.build()
        byteEdges = builder.bytes
        ruleStarts = builder.starts
        ruleNames = builder.names
        rootRule = builder.index[grammar.root]!
        closures = Self.closures(bytes: builder.bytes, eps: builder.eps, calls: builder.calls, ends: builder.ends)
        let (dist, steps) = Self.shortestPaths(bytes: builder.bytes, eps: builder.eps, calls: builder.calls,
                                               ends: builder.ends, starts: builder.starts, endOf: builder.endOf)
        distance = dist
        shortestStep = steps
        let rootDistance = dist[Int(builder.starts[Int(rootRule)])]
        guard rootDistance != Int32.max else {
            throw GrammarError("rule '\(grammar.root)' matches no finite text")
        }
        minimumLength = Int(rootDistance)
        try Self.rejectLeftRecursion(closures: closures, starts: ruleStarts, names: ruleNames, distance: dist)
    }

    // MARK: Compile-time analysis

    private static func closures(bytes: [[ByteEdge]], eps: [[Int32]], calls: [Call?], ends: [Bool]) -> [Closure] {
        var out = [Closure](repeating: Closure(), count: bytes.count)
        var seen = [Int](repeating: -1, count: bytes.count)
        for n in 0..<bytes.count {
            var c = Closure()
            var stack = [Int32(n)]
            seen[n] = n
            while let m = stack.popLast() {
                let i = Int(m)
                if !bytes[i].isEmpty { c.reading.append(m) }
                if let call = calls[i] { c.calls.append(call) }
                if ends[i] { c.ends = true }
                for e in eps[i] where seen[Int(e)] != n {
                    seen[Int(e)] = n
                    stack.append(e)
                }
            }
            c.reading.sort()
            out[n] = c
        }
        return out
    }

    /// Fewest bytes from every node to its rule's end, with a canonical first step. Costs are compared as
    /// (bytes, steps) so that a zero-length detour (a call of a nullable rule) never beats the direct path, which
    /// keeps the canonical path free of cycles.
    private static func shortestPaths(bytes: [[ByteEdge]], eps: [[Int32]], calls: [Call?], ends: [Bool],
                                      starts: [Int32], endOf: [Int32]) -> ([Int32], [ShortestStep]) {
        let n = bytes.count
        let infinity = Int64.max / 4
        var cost = [Int64](repeating: infinity, count: n)
        var step = [ShortestStep](repeating: .none, count: n)
        // Reverse edges (without calls, which depend on rule costs).
        var reverse = [[(from: Int32, weight: Int64, step: ShortestStep)]](repeating: [], count: n)
        for u in 0..<n {
            for e in bytes[u] {
                reverse[Int(e.target)].append((Int32(u), (1 << 20) + 1, .byte(e.lo, e.target)))
            }
            for v in eps[u] { reverse[Int(v)].append((Int32(u), 1, .skip(v))) }
        }
        var ruleCost = [Int64](repeating: infinity, count: starts.count)
        var changed = true
        while changed {
            changed = false
            cost = [Int64](repeating: infinity, count: n)
            step = [ShortestStep](repeating: .none, count: n)
            var heap = MinHeap()
            for u in 0..<n where ends[u] {
                cost[u] = 0
                step[u] = .end
                heap.push(0, Int32(u))
            }
            // Calls as edges u → ret weighted by the callee's current cost.
            var callReverse = [[(from: Int32, call: Call)]](repeating: [], count: n)
            for u in 0..<n { if let c = calls[u] { callReverse[Int(c.ret)].append((Int32(u), c)) } }
            while let (d, v) = heap.pop() {
                if d > cost[Int(v)] { continue }
                for r in reverse[Int(v)] where d + r.weight < cost[Int(r.from)] {
                    cost[Int(r.from)] = d + r.weight
                    step[Int(r.from)] = r.step
                    heap.push(d + r.weight, r.from)
                }
                for r in callReverse[Int(v)] {
                    let w = ruleCost[Int(r.call.rule)]
                    guard w < infinity else { continue }
                    let total = d + w + 1
                    if total < cost[Int(r.from)] {
                        cost[Int(r.from)] = total
                        step[Int(r.from)] = .call(r.call)
                        heap.push(total, r.from)
                    }
                }
            }
            for (r, s) in starts.enumerated() where cost[Int(s)] < ruleCost[r] {
                ruleCost[r] = cost[Int(s)]
                changed = true
            }
            _ = endOf
        }
        let bytesOnly = cost.map { $0 >= infinity ? Int32.max : Int32(clamping: $0 >> 20) }
        return (bytesOnly, step)
    }

    private static func rejectLeftRecursion(closures: [Closure], starts: [Int32], names: [String],
                                            distance: [Int32]) throws(GrammarError) {
        // Rules each rule can call before reading a byte (through nullable callees too).
        var left = [Set<Int32>](repeating: [], count: starts.count)
        for (r, s) in starts.enumerated() {
            var seen: Set<Int32> = [s]
            var todo = [s]
            while let n = todo.popLast() {
                for c in closures[Int(n)].calls {
                    left[r].insert(c.rule)
                    if distance[Int(starts[Int(c.rule)])] == 0, seen.insert(c.ret).inserted { todo.append(c.ret) }
                }
            }
        }
        var state = [UInt8](repeating: 0, count: starts.count)
        func visit(_ r: Int) throws(GrammarError) {
            state[r] = 1
            for next in left[r] {
                if state[Int(next)] == 1 { throw GrammarError("rule '\(names[Int(next)])' is left-recursive") }
                if state[Int(next)] == 0 { try visit(Int(next)) }
            }
            state[r] = 2
        }
        for r in 0..<starts.count where state[r] == 0 { try visit(r) }
    }
}

/// A binary heap of (cost, node) for the shortest-path pass.
struct MinHeap {
    private var items: [(Int64, Int32)] = []
    mutating func push(_ cost: Int64, _ node: Int32) {
        items.append((cost, node))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p].0 <= items[i].0 { break }
            items.swapAt(p, i)
            i = p
        }
    }
    mutating func pop() -> (Int64, Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].0 < items[m].0 { m = l }
                if r < items.count && items[r].0 < items[m].0 { m = r }
                if m == i { break }
                items.swapAt(m, i)
                i = m
            }
        }
        return top
    }
}

/// Thompson-style construction: each expression is wired between two given nodes, never adding loops on them.
struct NFABuilder {
    let grammar: Grammar
    var bytes: [[CompiledGrammar.ByteEdge]] = []
    var eps: [[Int32]] = []
    var calls: [CompiledGrammar.Call?] = []
    var ends: [Bool] = []
    var starts: [Int32] = []
    var endOf: [Int32] = []
    var names: [String] = []
    var index: [String: Int32] = [:]
    static let nodeLimit = 2_000_000

    init(grammar: Grammar) { self.grammar = grammar }

    mutating func node() throws(GrammarError) -> Int32 {
        guard bytes.count < Self.nodeLimit else { throw GrammarError("grammar is too large (over \(Self.nodeLimit) states)") }
        bytes.append([])
        eps.append([])
        calls.append(nil)
        ends.append(false)
        return Int32(bytes.count - 1)
    }

    mutating func build() throws(GrammarError) {
        guard grammar.rules[grammar.root] != nil else { throw GrammarError("root rule '\(grammar.root)' is not defined") }
        // Root first, then the others in name order, so node numbering is stable.
        names = [grammar.root] + grammar.rules.keys.filter { $0 != grammar.root }.sorted()
        for (i, name) in names.enumerated() { index[name] = Int32(i) }
        for _ in names {
            let s = try node(), e = try node()
            starts.append(s)
            endOf.append(e)
            ends[Int(e)] = true
        }
        for (i, name) in names.enumerated() {
            try compile(grammar.rules[name]!, from: starts[i], to: endOf[i])
        }
    }

    mutating func edge(_ a: Int32, _ lo: UInt8, _ hi: UInt8, _ b: Int32) {
        bytes[Int(a)].append(CompiledGrammar.ByteEdge(lo: lo, hi: hi, target: b))
    }

    mutating func chain(_ ranges: [ClosedRange<UInt8>], from a: Int32, to b: Int32) throws(GrammarError) {
        if ranges.isEmpty {
            eps[Int(a)].append(b)
            return
        }
        var cur = a
        for (i, r) in ranges.enumerated() {
            let next = i == ranges.count - 1 ? b : try node()
            edge(cur, r.lowerBound, r.upperBound, next)
            cur = next
        }
    }

    mutating func compile(_ e: GrammarExpr, from a: Int32, to b: Int32) throws(GrammarError) {
        switch e {
        case .literal(let s):
            try chain(s.map { $0...$0 }, from: a, to: b)
        case .chars(let cls):
            let ranges = cls.normalized
            if ranges.isEmpty { return }  // matches nothing: no path from a to b
            // Single-byte ranges share one edge each; longer encodings get their own chains.
            for r in ranges {
                for seq in UTF8Ranges.sequences(r) { try chain(seq, from: a, to: b) }
            }
        case .sequence(let parts):
            if parts.isEmpty {
                eps[Int(a)].append(b)
                return
            }
            var cur = a
            for (i, p) in parts.enumerated() {
                let next = i == parts.count - 1 ? b : try node()
                try compile(p, from: cur, to: next)
                cur = next
            }
        case .choice(let alternatives):
            for alt in alternatives {
                // Fresh entry and exit nodes keep one alternative's loops out of the others.
                let s = try node(), t = try node()
                eps[Int(a)].append(s)
                try compile(alt, from: s, to: t)
                eps[Int(t)].append(b)
            }
        case .repetition(let body, let min, let max):
            guard min >= 0, max.map({ $0 >= min }) ?? true else {
                throw GrammarError("repetition bounds \(min)...\(max.map(String.init) ?? "") are invalid")
            }
            guard min <= 10_000, (max ?? 0) <= 10_000 else {
                throw GrammarError("repetition bound over 10000")
            }
            var cur = try node()
            eps[Int(a)].append(cur)
            for _ in 0..<min {
                let next = try node()
                try compile(body, from: cur, to: next)
                cur = next
            }
            if let max {
                for _ in min..<max {
                    let next = try node()
                    eps[Int(cur)].append(b)
                    try compile(body, from: cur, to: next)
                    cur = next
                }
                eps[Int(cur)].append(b)
            } else {
                let loop = try node(), bodyEnd = try node()
                eps[Int(cur)].append(loop)
                try compile(body, from: loop, to: bodyEnd)
                eps[Int(bodyEnd)].append(loop)
                eps[Int(loop)].append(b)
            }
        case .rule(let name):
            guard let r = index[name] else { throw GrammarError("rule '\(name)' is not defined") }
            let c = try node()
            eps[Int(a)].append(c)
            calls[Int(c)] = CompiledGrammar.Call(rule: r, ret: b)
        case .graph(let g):
            guard g.stateCount > 0 else { return }  // no states: matches nothing
            var states: [Int32] = []
            states.reserveCapacity(g.stateCount)
            for _ in 0..<g.stateCount { states.append(try node()) }
            eps[Int(a)].append(states[0])
            for e in g.edges {
                guard states.indices.contains(e.from), states.indices.contains(e.to) else {
                    throw GrammarError("graph edge \(e.from) → \(e.to) leaves its \(g.stateCount) states")
                }
                try compile(e.label, from: states[e.from], to: states[e.to])
            }
            for s in g.accepting {
                guard states.indices.contains(s) else { throw GrammarError("graph accepting state \(s) does not exist") }
                eps[Int(states[s])].append(b)
            }
        }
    }
}
