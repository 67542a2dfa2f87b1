// The `pattern` keyword's regular expressions: a subset of ECMA-262 syntax parsed to a `RegexNode` with JSON
// Schema's search semantics (an unanchored side allows any text there). Where ECMA-262 and Python's `re` (which
// jsonschema validates with) read a construct differently, the construct is refused, or the node takes only what
// both accept.

/// Why a pattern is refused: the message names the construct.
struct RegexError: Error, Sendable, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// The supported subset: literals and escaped punctuation; `.`; classes `[a-z]`, `[^...]` with ranges and escapes;
/// `\d \D \w \W \s \S`; `\t \n \r \f \v \0 \xHH \uHHHH`; groups `(...)`, `(?:...)`, `(?<name>...)`; `|`;
/// `? * + {m} {m,} {m,n}` (lazy forms too, which match the same strings); `^` and `$` only at the start and end of
/// a top-level alternative. Refused: lookaround, backreferences, `\b \B`, Unicode property escapes, inline flags, a
/// `{` that is not a quantifier, an empty class `[]`.
///
/// Characters: `\d` is `[0-9]`, `\w` `[A-Za-z0-9_]`, `\s` the whitespace both ECMA-262 and Python agree on;
/// `\D`, `\W`, `\S`, `.` and negated classes leave out whatever either reading might count in the thing negated
/// (so `\W` is ASCII-only, `\D` stops at U+065F, and `.` excludes all four line terminators).
struct RegexPattern {
    private let scalars: [Unicode.Scalar]
    private var i = 0

    /// Bounded repeats unroll; a cap keeps one quantifier from making a huge automaton.
    static let repeatLimit = 1000

    private init(_ source: String) { scalars = Array(source.unicodeScalars) }

    /// The strings `source` matches somewhere (JSON Schema's `pattern`): each top-level alternative without `^`
    /// may be preceded by any text, without `$` followed by any.
    static func parse(_ source: String) throws(RegexError) -> RegexNode {
        var p = RegexPattern(source)
        var alternatives: [RegexNode] = []
        repeat {
            var parts: [RegexNode] = []
            if p.peek("^") {
                p.i += 1
            } else {
                parts.append(.anything)
            }
            var body = try p.sequence(topLevel: true)
            var anchoredEnd = false
            if p.peek("$") {
                p.i += 1
                anchoredEnd = true
                guard p.atEnd || p.peek("|") else { throw RegexError("'$' is only supported at the end of the pattern or of a top-level alternative") }
            }
            parts.append(body)
            if !anchoredEnd { parts.append(.anything) }
            body = .sequence(parts)
            alternatives.append(body)
        } while p.take("|")
        guard p.atEnd else { throw RegexError("unbalanced ')' at offset \(p.i)") }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    // MARK: Structure

    private var atEnd: Bool { i >= scalars.count }

    private func peek(_ c: Unicode.Scalar) -> Bool { i < scalars.count && scalars[i] == c }

    private mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard peek(c) else { return false }
        i += 1
        return true
    }

    private mutating func next() throws(RegexError) -> Unicode.Scalar {
        guard i < scalars.count else { throw RegexError("the pattern ends in the middle of a construct") }
        defer { i += 1 }
        return scalars[i]
    }

    private mutating func alternation() throws(RegexError) -> RegexNode {
        var alternatives = [try sequence(topLevel: false)]
        while take("|") { alternatives.append(try sequence(topLevel: false)) }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    /// Atoms with their quantifiers up to `|`, `)`, the end, or (top level) a final `$`.
    private mutating func sequence(topLevel: Bool) throws(RegexError) -> RegexNode {
        var items: [RegexNode] = []
        while !atEnd && !peek("|") && !peek(")") {
            if peek("$") {
                if topLevel && (i + 1 == scalars.count || scalars[i + 1] == "|") { break }
                throw RegexError("'$' is only supported at the end of the pattern or of a top-level alternative")
            }
            if peek("^") { throw RegexError("'^' is only supported at the start of the pattern or of a top-level alternative") }
            let atom = try self.atom()
            items.append(try quantified(atom))
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func quantified(_ atom: RegexNode) throws(RegexError) -> RegexNode {
        var min: Int, max: Int?
        if take("*") {
            (min, max) = (0, nil)
        } else if take("+") {
            (min, max) = (1, nil)
        } else if take("?") {
            (min, max) = (0, 1)
        } else if peek("{") {
            (min, max) = try braces()
        } else {
            return atom
        }
        _ = take("?")  // lazy: the same strings match
        if peek("*") || peek("+") || peek("?") || peek("{") { throw RegexError("a quantifier cannot follow another quantifier") }
        return .repeated(atom, min: min, max: max)
    }

    private mutating func braces() throws(RegexError) -> (Int, Int?) {
        let notQuantifier = RegexError("a '{' that is not a quantifier {m}, {m,} or {m,n} must be escaped as '\\{'")
        i += 1
        guard let low = number() else { throw notQuantifier }
        var max: Int? = low
        if take(",") { max = number() }
        guard take("}") else { throw notQuantifier }
        guard low <= Self.repeatLimit, (max ?? 0) <= Self.repeatLimit else {
            throw RegexError("repetition counts above \(Self.repeatLimit) are not supported")
        }
        if let max, max < low { throw RegexError("the quantifier {\(low),\(max)} is out of order") }
        return (low, max)
    }

    private mutating func number() -> Int? {
        var value: Int?
        while i < scalars.count, ("0"..."9").contains(scalars[i]) {
            value = min((value ?? 0) * 10 + Int(scalars[i].value - 48), 1_000_000)
            i += 1
        }
        return value
    }

    private mutating func atom() throws(RegexError) -> RegexNode {
        let c = try next()
        switch c {
        case "(":
            if take("?") {
                if take(":") {
                    // non-capturing
                } else if take("<") {
                    if peek("=") || peek("!") { throw RegexError("lookbehind is not supported") }
                    while !take(">") {
                        let n = try next()
                        guard n.properties.isAlphabetic || n == "_" || ("0"..."9").contains(n) else {
                            throw RegexError("a group name may hold letters, digits and '_' only")
                        }
                    }
                } else if peek("=") || peek("!") {
                    throw RegexError("lookahead is not supported")
                } else {
                    throw RegexError("'(?' is only supported as '(?:' or '(?<name>'")
                }
            }
            let inner = try alternation()
            guard take(")") else { throw RegexError("a '(' is not closed") }
            return inner
        case ".":
            return .set(ClassItem.dot.sure)
        case "[":
            return .set(try characterClass())
        case "\\":
            return .set(try escape(inClass: false).sure)
        case "*", "+", "?":
            throw RegexError("'\(c)' has nothing to repeat")
        case "{":
            i -= 1
            _ = try braces()
            throw RegexError("a quantifier has nothing to repeat")
        default:
            return .set(ScalarSet([c.value...c.value]))
        }
    }

    // MARK: Characters

    /// A character set as both readings see it: `sure` holds what both count in it, `maybe` what either might.
    struct ClassItem {
        var sure: ScalarSet
        var maybe: ScalarSet

        init(_ set: ScalarSet) { sure = set; maybe = set }
        init(sure: ScalarSet, maybe: ScalarSet) { self.sure = sure; self.maybe = maybe }

        var negated: ClassItem { ClassItem(sure: maybe.complement, maybe: sure.complement) }

        static let digit = ClassItem(sure: ScalarSet("0"..."9"), maybe: ScalarSet([0x30...0x39, 0x660...0x10FFFF]))
        static let word = ClassItem(sure: ScalarSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]),
                                    maybe: ScalarSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A, 0x80...0x10FFFF]))
        /// ECMA-262's WhiteSpace and LineTerminator against Python's `str.isspace`.
        static let space = ClassItem(
            sure: ScalarSet([0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029,
                             0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000]),
            maybe: ScalarSet([0x09...0x0D, 0x1C...0x20, 0x85...0x85, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                              0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF]))
        /// ECMA-262 stops at four line terminators, Python at `\n` only.
        static let dot = ClassItem(sure: ScalarSet([0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029]).complement,
                                   maybe: ScalarSet([0x0A...0x0A]).complement)
    }

    private mutating func characterClass() throws(RegexError) -> ScalarSet {
        let negated = take("^")
        if peek("]") { throw RegexError("an empty class '[]' (or a ']' first in a class) is not supported; escape it as '\\]'") }
        var sure = ScalarSet.none, maybe = ScalarSet.none
        while !take("]") {
            guard !atEnd else { throw RegexError("a '[' is not closed") }
            let low = try classAtom()
            if peek("-"), i + 1 < scalars.count, scalars[i + 1] != "]" {
                i += 1
                let high = try classAtom()
                guard let a = low.single, let b = high.single else {
                    throw RegexError("a class range needs a single character at each end")
                }
                guard a <= b else { throw RegexError("the class range is out of order") }
                let range = ScalarSet([a...b])
                sure = sure.union(range)
                maybe = maybe.union(range)
            } else {
                sure = sure.union(low.item.sure)
                maybe = maybe.union(low.item.maybe)
            }
        }
        let item = ClassItem(sure: sure, maybe: maybe)
        return negated ? item.negated.sure : item.sure
    }

    private mutating func classAtom() throws(RegexError) -> (item: ClassItem, single: UInt32?) {
        let c = try next()
        if c == "\\" {
            let item = try escape(inClass: true)
            let single: UInt32? = item.sure == item.maybe && item.sure.ranges.count == 1
                && item.sure.ranges[0].count == 1 ? item.sure.ranges[0].lowerBound : nil
            return (item, single)
        }
        return (ClassItem(ScalarSet([c.value...c.value])), c.value)
    }

    private mutating func escape(inClass: Bool) throws(RegexError) -> ClassItem {
        let c = try next()
        let single = { (v: UInt32) in ClassItem(ScalarSet([v...v])) }
        switch c {
        case "d": return .digit
        case "D": return ClassItem.digit.negated
        case "w": return .word
        case "W": return ClassItem.word.negated
        case "s": return .space
        case "S": return ClassItem.space.negated
        case "t": return single(0x09)
        case "n": return single(0x0A)
        case "v": return single(0x0B)
        case "f": return single(0x0C)
        case "r": return single(0x0D)
        case "b":
            guard inClass else { throw RegexError("word boundaries ('\\b', '\\B') are not supported") }
            return single(0x08)
        case "B": throw RegexError("word boundaries ('\\b', '\\B') are not supported")
        case "0":
            if i < scalars.count, ("0"..."9").contains(scalars[i]) { throw RegexError("octal escapes are not supported") }
            return single(0)
        case "1"..."9", "k": throw RegexError("backreferences are not supported")
        case "x": return single(try hex(2))
        case "u":
            let v = try hex(4)
            guard !(0xD800...0xDFFF).contains(v) else { throw RegexError("surrogate escapes are not supported") }
            return single(v)
        case "p", "P": throw RegexError("Unicode property escapes are not supported")
        default:
            // Escaped punctuation stands for itself; an escaped letter or digit not listed above means different
            // things to different engines.
            guard !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                throw RegexError("the escape '\\\(c)' is not supported")
            }
            return single(c.value)
        }
    }

    private mutating func hex(_ digits: Int) throws(RegexError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<digits {
            guard i < scalars.count, scalars[i].isASCII, let d = UInt32(String(scalars[i]), radix: 16) else {
                throw RegexError("'\\x' takes 2 hex digits and '\\u' 4")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }
}
