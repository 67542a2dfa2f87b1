// JSON string literals, spelled one way for every part that writes JSON by hand (tool prompts, grammars, logs).

public enum JSONText {
    /// A JSON string literal: quotes, backslashes and control characters escaped; non-ASCII kept as UTF-8, since
    /// both the tokenizer and log readers take it as it is.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
