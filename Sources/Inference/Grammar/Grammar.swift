// The grammar IR: named rules over bytes, as plain values. JSON Schema, tool-call syntax or a hand-written grammar all
// lower to this; `CompiledGrammar` turns it into the automaton the matcher runs.

/// One expression of a rule. Everything matches bytes; `chars` matches whole UTF-8 encoded scalars, so a class such as
/// "any character but `\"` and `\\`" never lets a token split a character into invalid UTF-8.
///
/// ```swift
/// let digits = GrammarExpr.repetition(.chars(CharClass("0"..."9")), min: 1, max: nil)
/// let grammar = Grammar(root: "list", rules: [
///     "list": .sequence([.text("["), .optional(.sequence([.rule("item"), .repetition(.sequence([.text(","), .rule("item")]), min: 0, max: nil)])), .text("]")]),
///     "item": .choice([digits, .rule("list")]),   // recursion is fine, left recursion is not
/// ])
/// ```
public indirect enum GrammarExpr: Hashable, Sendable {
    /// Exactly these bytes.
    case literal([UInt8])
    /// One Unicode scalar from the class, as its UTF-8 bytes.
    case chars(CharClass)
    /// Each part in turn; the empty sequence matches the empty string.
    case sequence([GrammarExpr])
    /// Any one of the alternatives (the matcher follows all of them at once).
    case choice([GrammarExpr])
    /// `min` to `max` copies (`max` nil: unbounded). Bounded repeats unroll, so keep `max` modest (≤ 10,000).
    case repetition(GrammarExpr, min: Int, max: Int?)
    /// A reference to a rule by name; the referenced rule may refer back (a pushdown automaton runs it).
    case rule(String)
    /// An automaton given state by state (a compiled regular expression, say): loops without rule calls, so a long
    /// match costs no stack.
    case graph(GrammarGraph)

    public static func text(_ s: String) -> GrammarExpr { .literal(Array(s.utf8)) }
    public static let empty = GrammarExpr.sequence([])
    public static func optional(_ e: GrammarExpr) -> GrammarExpr { .repetition(e, min: 0, max: 1) }
    public static func zeroOrMore(_ e: GrammarExpr) -> GrammarExpr { .repetition(e, min: 0, max: nil) }
    public static func oneOrMore(_ e: GrammarExpr) -> GrammarExpr { .repetition(e, min: 1, max: nil) }
}

/// A set of Unicode scalars given as inclusive ranges, optionally negated (then: every scalar not in the ranges).
/// Surrogates are never matched, whatever the ranges say.
public struct CharClass: Hashable, Sendable {
    public var ranges: [ClosedRange<UInt32>]
    public var negated: Bool

    public init(_ ranges: [ClosedRange<UInt32>], negated: Bool = false) {
        self.ranges = ranges
        self.negated = negated
    }

    public init(_ range: ClosedRange<Unicode.Scalar>, negated: Bool = false) {
        self.init([range.lowerBound.value...range.upperBound.value], negated: negated)
    }

    /// The scalars of `s` (each one on its own).
    public init(anyOf s: String, negated: Bool = false) {
        self.init(s.unicodeScalars.map { $0.value...$0.value }, negated: negated)
    }

    public static let any = CharClass([], negated: true)

    /// The ranges it matches, sorted, merged, without surrogates.
    public var normalized: [ClosedRange<UInt32>] {
        var sorted = ranges.map { $0.lowerBound...Swift.min($0.upperBound, 0x10FFFF) }
            .filter { $0.lowerBound <= 0x10FFFF }
            .sorted { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for r in sorted {
            if let last = merged.last, r.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...Swift.max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        if negated {
            var complement: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for r in merged {
                if r.lowerBound > next { complement.append(next...(r.lowerBound - 1)) }
                next = r.upperBound + 1
            }
            if next <= 0x10FFFF { complement.append(next...0x10FFFF) }
            merged = complement
        }
        sorted = []
        for r in merged {
            // Cut the surrogate block out.
            if r.upperBound < 0xD800 || r.lowerBound > 0xDFFF {
                sorted.append(r)
            } else {
                if r.lowerBound < 0xD800 { sorted.append(r.lowerBound...0xD7FF) }
                if r.upperBound > 0xDFFF { sorted.append(0xE000...r.upperBound) }
            }
        }
        return sorted
    }
}

/// States `0..<stateCount`, entered at state 0 and left from any accepting state, with edges that each match their
/// label. A label must not match the empty string (a self-loop on it would then read nothing).
public struct GrammarGraph: Hashable, Sendable {
    public struct Edge: Hashable, Sendable {
        public var from: Int
        public var to: Int
        public var label: GrammarExpr

        public init(from: Int, to: Int, label: GrammarExpr) {
            self.from = from
            self.to = to
            self.label = label
        }
    }

    public var stateCount: Int
    public var accepting: [Int]
    public var edges: [Edge]

    public init(stateCount: Int, accepting: [Int], edges: [Edge]) {
        self.stateCount = stateCount
        self.accepting = accepting
        self.edges = edges
    }

    /// The same automaton with every edge's label transformed.
    public func mappingLabels(_ transform: (GrammarExpr) -> GrammarExpr) -> GrammarGraph {
        GrammarGraph(stateCount: stateCount, accepting: accepting,
                     edges: edges.map { Edge(from: $0.from, to: $0.to, label: transform($0.label)) })
    }
}

/// Named rules and the one the whole text must match. Rule names are free-form; a missing rule is an error at
/// compile time, as is left recursion (a rule reaching itself without consuming a byte).
public struct Grammar: Hashable, Sendable {
    public var root: String
    public var rules: [String: GrammarExpr]

    public init(root: String, rules: [String: GrammarExpr]) {
        self.root = root
        self.rules = rules
    }

    /// A grammar of one rule.
    public init(_ expr: GrammarExpr) {
        self.init(root: "root", rules: ["root": expr])
    }
}

/// Why a grammar does not compile.
public struct GrammarError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
