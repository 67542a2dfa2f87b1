// Reads tool calls out of a reply written in a family's call syntax, also while the reply is still growing, so a
// stream can send each call's name and argument fragments as they arrive.
import Inference

struct ScannedCall: Equatable {
    /// nil until the name's string has closed.
    var name: String?
    /// The arguments' JSON text as written so far; grows only by appending.
    var arguments: String
    var complete: Bool
}

struct ToolCallScan: Equatable {
    enum Progress: Equatable {
        /// No call has begun: the whole text is the reply's content.
        case text
        /// A call has begun and is not finished (or could still be followed by another).
        case partial
        /// Every call is finished; `trailing` is the text after them.
        case complete(trailing: String)
        /// A call began but is not well formed: the whole text is content after all.
        case invalid
    }

    /// Text before the calls (all of it while `progress` is `.text`).
    var content: String
    var calls: [ScannedCall]
    var progress: Progress
}

enum ToolCallScanner {
    /// `final` says no more text will come: a number or a separator at the very end is then complete.
    static func scan(_ text: String, syntax: ToolCallSyntax, final: Bool) -> ToolCallScan {
        let bytes = Array(text.utf8)
        guard let start = callStart(bytes, syntax: syntax) else {
            return ToolCallScan(content: text, calls: [], progress: .text)
        }
        let content = String(decoding: bytes[..<start], as: UTF8.self)
        var reader = Reader(bytes: bytes, position: start, final: final, syntax: syntax)
        let progress = reader.readCalls()
        return ToolCallScan(content: content, calls: reader.calls, progress: progress)
    }

    /// Where the calls begin: the trigger for marker syntaxes; for llama3 a reply that opens with an object.
    static func callStart(_ bytes: [UInt8], syntax: ToolCallSyntax) -> Int? {
        if syntax.trigger.isEmpty {
            guard let first = bytes.firstIndex(where: { !isSpace($0) }), bytes[first] == UInt8(ascii: "{") else { return nil }
            return first
        }
        let trigger = Array(syntax.trigger.utf8)
        guard bytes.count >= trigger.count else { return nil }
        for i in 0...(bytes.count - trigger.count) where bytes[i..<(i + trigger.count)].elementsEqual(trigger) {
            return i
        }
        return nil
    }

    /// How many bytes at the end of `text` could begin the trigger, so a stream holds them back as possible markup.
    static func heldBack(_ text: String, syntax: ToolCallSyntax) -> Int {
        let bytes = Array(text.utf8)
        if syntax.trigger.isEmpty {
            // A llama3 call is the whole reply: until something other than space arrives, it may still be one.
            return bytes.allSatisfy(isSpace) ? bytes.count : 0
        }
        let trigger = Array(syntax.trigger.utf8)
        for length in stride(from: min(trigger.count - 1, bytes.count), to: 0, by: -1)
        where bytes[(bytes.count - length)...].elementsEqual(trigger[..<length]) {
            return length
        }
        return 0
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    private struct Reader {
        enum Step { case done(Int), partial, mismatch }

        let bytes: [UInt8]
        var position: Int
        let final: Bool
        let syntax: ToolCallSyntax
        var calls: [ScannedCall] = []

        var atEnd: Bool { position >= bytes.count }

        mutating func skipSpace() {
            while position < bytes.count && ToolCallScanner.isSpace(bytes[position]) { position += 1 }
        }

        /// A literal of the syntax, where any run of whitespace in it matches any run (or none) in the text.
        func literal(_ text: String, at start: Int) -> Step {
            var i = start
            for b in text.utf8 {
                if ToolCallScanner.isSpace(b) {
                    while i < bytes.count && ToolCallScanner.isSpace(bytes[i]) { i += 1 }
                    continue
                }
                guard i < bytes.count else { return .partial }
                guard bytes[i] == b else { return .mismatch }
                i += 1
            }
            return .done(i)
        }

        mutating func readCalls() -> ToolCallScan.Progress {
            switch literal(syntax.start, at: position) {
            case .done(let end): position = end
            case .partial: return final ? .invalid : .partial
            case .mismatch: return .invalid
            }
            while true {
                switch object() {
                case .partial: return final ? .invalid : .partial
                case .mismatch: return .invalid
                case .done: break
                }
                let separator = literal(syntax.separator, at: position)
                if case .done(let end) = separator {
                    var next = end
                    while next < bytes.count && ToolCallScanner.isSpace(bytes[next]) { next += 1 }
                    if next < bytes.count && bytes[next] == UInt8(ascii: "{") {
                        position = next
                        continue
                    }
                    if next >= bytes.count && !final { return .partial }
                }
                if case .done(let end) = literal(syntax.end, at: position) {
                    if case .partial = separator, !final { return .partial }
                    return .complete(trailing: String(decoding: bytes[end...], as: UTF8.self))
                }
                if case .mismatch = separator { return .invalid }
                return final ? .invalid : .partial
            }
        }

        /// One `{"name": …, "arguments": …}` object; other keys are skipped.
        mutating func object() -> Step {
            skipSpace()
            guard !atEnd else { return .partial }
            guard bytes[position] == UInt8(ascii: "{") else { return .mismatch }
            position += 1
            calls.append(ScannedCall(name: nil, arguments: "", complete: false))
            let index = calls.count - 1
            var sawArguments = false
            while true {
                skipSpace()
                guard !atEnd else { return .partial }
                if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    break
                }
                guard bytes[position] == UInt8(ascii: "\"") else { return .mismatch }
                let keyStart = position
                guard let keyEnd = string(at: position) else { return .partial }
                guard case .string(let key)? = JSONValue.parse(Array(bytes[keyStart..<keyEnd])) else { return .mismatch }
                position = keyEnd
                skipSpace()
                guard !atEnd else { return .partial }
                guard bytes[position] == UInt8(ascii: ":") else { return .mismatch }
                position += 1
                skipSpace()
                guard !atEnd else { return .partial }
                let valueStart = position
                let valueEnd = value(at: position)
                if key == "name" {
                    guard bytes[valueStart] == UInt8(ascii: "\"") else { return .mismatch }
                    guard let end = valueEnd else { return .partial }
                    guard case .string(let name)? = JSONValue.parse(Array(bytes[valueStart..<end])) else { return .mismatch }
                    calls[index].name = name
                } else if key == syntax.argumentsKey || key == "arguments" || key == "parameters" {
                    sawArguments = true
                    calls[index].arguments = String(decoding: bytes[valueStart..<(valueEnd ?? bytes.count)], as: UTF8.self)
                    guard let end = valueEnd else { return .partial }
                    guard JSONValue.parse(Array(bytes[valueStart..<end])) != nil else { return .mismatch }
                }
                guard let end = valueEnd else { return .partial }
                position = end
                skipSpace()
                guard !atEnd else { return .partial }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] != UInt8(ascii: "}") {
                    return .mismatch
                }
            }
            guard calls[index].name != nil else { return .mismatch }
            if !sawArguments { calls[index].arguments = "{}" }
            calls[index].complete = true
            return .done(position)
        }

        /// The end of the string starting at `start` (one past its closing quote), or nil if it has not closed.
        func string(at start: Int) -> Int? {
            var i = start + 1
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\\"): i += 2
                case UInt8(ascii: "\""): return i + 1
                default: i += 1
                }
            }
            return nil
        }

        /// The end of the JSON value starting at `start`, or nil if it has not ended yet. Brackets are only
        /// counted; the finished text is checked by parsing it.
        func value(at start: Int) -> Int? {
            switch bytes[start] {
            case UInt8(ascii: "\""):
                return string(at: start)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                var i = start
                while i < bytes.count {
                    switch bytes[i] {
                    case UInt8(ascii: "\""):
                        guard let end = string(at: i) else { return nil }
                        i = end
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { return i + 1 }
                    default: break
                    }
                    i += 1
                }
                return nil
            default:
                var i = start
                while i < bytes.count && !",}] \n\r\t".utf8.contains(bytes[i]) { i += 1 }
                return i < bytes.count || final ? i : nil
            }
        }
    }
}
