// The JSON building blocks every constraint shares: whitespace, strings, numbers, any value, as grammar rules.
import Inference

enum JSONGrammar {
    /// Whitespace between tokens: none or a little (at most 8 bytes at one place), so the model cannot wander in
    /// whitespace forever but may still lay its answer out.
    static let ws = GrammarExpr.repetition(.chars(CharClass(anyOf: " \n\t")), min: 0, max: 8)

    /// One character inside a JSON string: any scalar but `"`, `\` and controls, or an escape.
    static let stringChar = GrammarExpr.choice([
        .chars(CharClass([0x00...0x1F, 0x22...0x22, 0x5C...0x5C], negated: true)),
        .sequence([.text("\\"), .choice([
            .chars(CharClass(anyOf: "\"\\/bfnrt")),
            .sequence([.text("u"), hex, hex, hex, hex]),
        ])]),
    ])

    /// The ways to write one character of `set` inside a JSON string: as itself, or escaped where JSON requires it
    /// (`\"`, `\\`, the short control escapes, `\u00XX` for the other controls). One expression per way.
    static func stringChar(in set: ScalarSet) -> [GrammarExpr] {
        let mustEscape = ScalarSet([0x00...0x1F, 0x22...0x22, 0x5C...0x5C])
        var out: [GrammarExpr] = []
        let plain = set.subtracting(mustEscape)
        if !plain.isEmpty { out.append(.chars(CharClass(plain.ranges))) }
        let short: [(UInt32, String)] = [(0x22, "\\\""), (0x5C, "\\\\"), (0x08, "\\b"), (0x09, "\\t"), (0x0A, "\\n"),
                                         (0x0C, "\\f"), (0x0D, "\\r")]
        for (v, escape) in short where set.contains(v) { out.append(.text(escape)) }
        for high: UInt32 in [0, 1] {
            let lows = (0..<16).map { high * 16 + UInt32($0) }.filter { v in set.contains(v) && !short.contains { $0.0 == v } }
            if lows.isEmpty { continue }
            let digits = lows.map { String($0 % 16, radix: 16) }.joined()
            out.append(.sequence([.text("\\u00\(high)"), .chars(CharClass(anyOf: digits))]))
        }
        return out
    }

    static let hex = GrammarExpr.chars(CharClass([0x30...0x39, 0x41...0x46, 0x61...0x66]))
    static let digit = GrammarExpr.chars(CharClass("0"..."9"))
    static let nonZero = GrammarExpr.chars(CharClass("1"..."9"))

    static func string(min: Int = 0, max: Int? = nil) -> GrammarExpr {
        .sequence([.text("\""), .repetition(stringChar, min: min, max: max), .text("\"")])
    }

    static let integer = GrammarExpr.sequence([
        .optional(.text("-")), .choice([.text("0"), .sequence([nonZero, .zeroOrMore(digit)])]),
    ])

    static let number = GrammarExpr.sequence([
        integer,
        .optional(.sequence([.text("."), .oneOrMore(digit)])),
        .optional(.sequence([.chars(CharClass(anyOf: "eE")), .optional(.chars(CharClass(anyOf: "+-"))), .oneOrMore(digit)])),
    ])

    /// Rules for any JSON value (`json-value`) and any object (`json-object`); add them to a grammar's rules.
    static let anyValueRules: [String: GrammarExpr] = [
        "json-value": .choice([
            .rule("json-object"), .rule("json-array"), string(), number, .text("true"), .text("false"), .text("null"),
        ]),
        "json-object": .sequence([
            .text("{"), ws,
            .optional(.sequence([
                .rule("json-member"), .zeroOrMore(.sequence([.text(","), ws, .rule("json-member")])),
            ])),
            .text("}"),
        ]),
        "json-member": .sequence([string(), ws, .text(":"), ws, .rule("json-value"), ws]),
        "json-array": .sequence([
            .text("["), ws,
            .optional(.sequence([
                .rule("json-value"), ws, .zeroOrMore(.sequence([.text(","), ws, .rule("json-value"), ws])),
            ])),
            .text("]"),
        ]),
    ]

    /// `response_format: json_object`: any JSON object, nothing before or after it.
    static var anyObject: Grammar {
        var rules = anyValueRules
        rules["root"] = .rule("json-object")
        return Grammar(root: "root", rules: rules)
    }

    /// A JSON value written out exactly (enum and const members), in the compact form the model is forced into.
    static func literal(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let x):
            return x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x)
        case .string(let s): return quoted(s)
        case .array(let items): return "[" + items.map(literal).joined(separator: ",") + "]"
        case .object(let o):
            return "{" + o.keys.sorted().map { quoted($0) + ":" + literal(o[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ s: String) -> String {
        JSONText.quoted(s)
    }
}
