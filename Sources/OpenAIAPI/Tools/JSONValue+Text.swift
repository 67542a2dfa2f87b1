// JSON text from a decoded value, for putting tool schemas into prompts and arguments into answers.
import Foundation
import Inference

extension JSONValue {
    /// Python's `json.dumps` spacing (`", "` and `": "`), which the chat templates' `tojson` writes; keys sorted,
    /// since the decoded object kept no order.
    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let x):
            if x.rounded() == x && abs(x) < 1e15 { out += String(Int64(x)) } else { out += "\(x)" }
        case .string(let s): out += JSONValue.quote(s)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += ", " }
                out += JSONValue.quote(key) + ": "
                members[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String) -> String {
        JSONText.quoted(s)
    }
}
