// A string constraint as an automaton over Unicode scalars without empty moves: built from a `RegexNode`,
// intersected with another (a pattern and a format, or a length range), then written as a grammar graph whose
// edges read one JSON-encoded character each.
import Inference

struct CharAutomaton: Sendable {
    struct Edge: Hashable, Sendable {
        var set: ScalarSet
        var to: Int
    }

    /// Outgoing edges of each state; state 0 is the start.
    private(set) var edges: [[Edge]]
    private(set) var accepting: [Bool]

    /// Automata beyond this many states are refused (a product can multiply them).
    static let stateLimit = 20_000

    struct TooLarge: Error {}

    var stateCount: Int { edges.count }
    /// Matches no string at all.
    var isEmpty: Bool { edges.isEmpty }

    init(_ regex: RegexNode) throws(TooLarge) {
        var nfa = EpsilonNFA()
        let start = try nfa.state(), end = try nfa.state()
        try nfa.add(regex, from: start, to: end)
        self = nfa.withoutEmptyMoves(start: start, end: end).trimmed()
    }

    fileprivate init(edges: [[Edge]], accepting: [Bool]) {
        self.edges = edges
        self.accepting = accepting
    }

    /// The strings both match.
    func intersection(_ other: CharAutomaton) throws(TooLarge) -> CharAutomaton {
        guard !isEmpty, !other.isEmpty else { return CharAutomaton(edges: [], accepting: []) }
        var index: [Int: Int] = [0: 0]
        var pairs = [(0, 0)]
        var outEdges: [[Edge]] = [[]]
        var outAccepting: [Bool] = []
        var k = 0
        while k < pairs.count {
            let (p, q) = pairs[k]
            outAccepting.append(accepting[p] && other.accepting[q])
            for e in edges[p] {
                for f in other.edges[q] {
                    let set = e.set.intersection(f.set)
                    if set.isEmpty { continue }
                    let key = e.to * other.stateCount + f.to
                    let target: Int
                    if let t = index[key] {
                        target = t
                    } else {
                        guard pairs.count < Self.stateLimit else { throw TooLarge() }
                        target = pairs.count
                        index[key] = target
                        pairs.append((e.to, f.to))
                        outEdges.append([])
                    }
                    outEdges[k].append(Edge(set: set, to: target))
                }
            }
            k += 1
        }
        return CharAutomaton(edges: outEdges, accepting: outAccepting).trimmed()
    }

    /// Fewest and most characters of a match (`max` nil: unbounded).
    var lengthRange: (min: Int, max: Int?) {
        guard !isEmpty else { return (0, 0) }
        // Fewest: breadth first from the start.
        var depth = [Int](repeating: -1, count: stateCount)
        depth[0] = 0
        var queue = [0], head = 0, shortest = Int.max
        while head < queue.count {
            let s = queue[head]
            head += 1
            if accepting[s] { shortest = min(shortest, depth[s]) }
            for e in edges[s] where depth[e.to] < 0 {
                depth[e.to] = depth[s] + 1
                queue.append(e.to)
            }
        }
        // Most: the longest path in topological order; a cycle (every state of a trimmed automaton lies on a
        // match) makes it unbounded.
        var indegree = [Int](repeating: 0, count: stateCount)
        for list in edges { for e in list { indegree[e.to] += 1 } }
        var order = (0..<stateCount).filter { indegree[$0] == 0 }
        var k = 0
        while k < order.count {
            for e in edges[order[k]] {
                indegree[e.to] -= 1
                if indegree[e.to] == 0 { order.append(e.to) }
            }
            k += 1
        }
        guard order.count == stateCount else { return (shortest, nil) }
        var longest = [Int](repeating: Int.min, count: stateCount)
        longest[0] = 0
        var most = 0
        for s in order where longest[s] != Int.min {
            if accepting[s] { most = max(most, longest[s]) }
            for e in edges[s] { longest[e.to] = max(longest[e.to], longest[s] + 1) }
        }
        return (shortest, most)
    }

    /// Only the matches of `min` to `max` characters, or nil when the product would be too large.
    func lengthBounded(min: Int, max: Int?) throws(TooLarge) -> CharAutomaton {
        let own = lengthRange
        if own.min >= min, max == nil || (own.max.map { $0 <= max! } ?? false) { return self }
        return try intersection(CharAutomaton(.repeated(.set(.all), min: min, max: max)))
    }

    /// The automaton as a grammar graph; `label` gives the expression that reads one character of a set.
    func graph(label: (ScalarSet) -> GrammarExpr) -> GrammarExpr {
        var out: [GrammarGraph.Edge] = []
        for (s, list) in edges.enumerated() {
            for e in list { out.append(GrammarGraph.Edge(from: s, to: e.to, label: label(e.set))) }
        }
        return .graph(GrammarGraph(stateCount: stateCount, accepting: accepting.indices.filter { accepting[$0] },
                                   edges: out))
    }

    /// Keeps the states on some path from the start to an accepting state, renumbered in visiting order, with the
    /// edges between two states merged into one.
    private func trimmed() -> CharAutomaton {
        guard !edges.isEmpty else { return self }
        var reverse = [[Int]](repeating: [], count: stateCount)
        for (s, list) in edges.enumerated() { for e in list { reverse[e.to].append(s) } }
        var live = accepting
        var stack = accepting.indices.filter { accepting[$0] }
        while let s = stack.popLast() {
            for p in reverse[s] where !live[p] {
                live[p] = true
                stack.append(p)
            }
        }
        guard live[0] else { return CharAutomaton(edges: [], accepting: []) }
        var number = [Int](repeating: -1, count: stateCount)
        number[0] = 0
        var order = [0], k = 0
        while k < order.count {
            for e in edges[order[k]] where live[e.to] && number[e.to] < 0 {
                number[e.to] = order.count
                order.append(e.to)
            }
            k += 1
        }
        var outEdges: [[Edge]] = []
        for s in order {
            var merged: [Int: ScalarSet] = [:]
            var targets: [Int] = []
            for e in edges[s] where live[e.to] {
                let t = number[e.to]
                if let m = merged[t] { merged[t] = m.union(e.set) } else { merged[t] = e.set; targets.append(t) }
            }
            outEdges.append(targets.map { Edge(set: merged[$0]!, to: $0) })
        }
        return CharAutomaton(edges: outEdges, accepting: order.map { accepting[$0] })
    }
}

/// Thompson's construction with empty moves, each piece wired between fresh states so that loops never touch
/// another piece's ends.
private struct EpsilonNFA {
    var empty: [[Int]] = []
    var reads: [[CharAutomaton.Edge]] = []

    mutating func state() throws(CharAutomaton.TooLarge) -> Int {
        guard empty.count < 4 * CharAutomaton.stateLimit else { throw CharAutomaton.TooLarge() }
        empty.append([])
        reads.append([])
        return empty.count - 1
    }

    mutating func add(_ node: RegexNode, from a: Int, to b: Int) throws(CharAutomaton.TooLarge) {
        switch node {
        case .set(let set):
            if !set.isEmpty { reads[a].append(CharAutomaton.Edge(set: set, to: b)) }
        case .sequence(let parts):
            var cur = a
            for (i, p) in parts.enumerated() {
                let next = i == parts.count - 1 ? b : try state()
                try add(p, from: cur, to: next)
                cur = next
            }
            if parts.isEmpty { empty[a].append(b) }
        case .choice(let alternatives):
            for alt in alternatives {
                let s = try state(), t = try state()
                empty[a].append(s)
                try add(alt, from: s, to: t)
                empty[t].append(b)
            }
        case .repeated(let body, let min, let max):
            var cur = try state()
            empty[a].append(cur)
            for _ in 0..<min {
                let next = try state()
                try add(body, from: cur, to: next)
                cur = next
            }
            if let max {
                for _ in min..<Swift.max(min, max) {
                    let next = try state()
                    empty[cur].append(b)
                    try add(body, from: cur, to: next)
                    cur = next
                }
                empty[cur].append(b)
            } else {
                let loop = try state(), bodyEnd = try state()
                empty[cur].append(loop)
                try add(body, from: loop, to: bodyEnd)
                empty[bodyEnd].append(loop)
                empty[loop].append(b)
            }
        }
    }

    /// Each state reads what the states its empty moves reach read, and accepts if one of them is the end. The
    /// start must be state 0.
    func withoutEmptyMoves(start: Int, end: Int) -> CharAutomaton {
        precondition(start == 0)
        let n = empty.count
        var edges = [[CharAutomaton.Edge]](repeating: [], count: n)
        var accepting = [Bool](repeating: false, count: n)
        var seen = [Int](repeating: -1, count: n)
        // Only the start and states entered by reading need their closure.
        var needed = [Bool](repeating: false, count: n)
        needed[start] = true
        for list in reads { for e in list { needed[e.to] = true } }
        for s in 0..<n where needed[s] {
            var stack = [s]
            seen[s] = s
            while let u = stack.popLast() {
                if u == end { accepting[s] = true }
                edges[s].append(contentsOf: reads[u])
                for v in empty[u] where seen[v] != s {
                    seen[v] = s
                    stack.append(v)
                }
            }
        }
        return CharAutomaton(edges: edges, accepting: accepting)
    }
}
