// One streamed choice of a request with tools: turns the growing reply into content deltas and OpenAI's tool-call
// deltas (the name first, then argument fragments), holding back text that may yet become a call marker.
import Inference

struct ToolCallStream {
    enum Delta: Equatable {
        case content(String)
        /// The first delta of call `index`: its id and name (with `arguments: ""`).
        case callStart(index: Int, id: String, name: String)
        case arguments(index: Int, fragment: String)
    }

    let syntax: ToolCallSyntax
    /// The ids given to the calls so far, in order.
    private(set) var ids: [String] = []
    private(set) var text = ""
    /// UTF-8 bytes of content already sent.
    private var contentSent = 0
    /// Per call started: bytes of its arguments already sent.
    private var argumentsSent: [Int] = []
    /// Once a started call turns out malformed the rest goes out as plain text.
    private var plain = false

    init(syntax: ToolCallSyntax) {
        self.syntax = syntax
    }

    var startedCalls: Int { argumentsSent.count }

    mutating func append(_ piece: String) -> [Delta] {
        text += piece
        return advance(final: false)
    }

    /// The reply is complete: whatever was held back goes out.
    mutating func finish() -> [Delta] { advance(final: true) }

    private mutating func advance(final: Bool) -> [Delta] {
        var deltas: [Delta] = []
        if plain {
            sendContent(upTo: text.utf8.count, &deltas)
            return deltas
        }
        let scan = ToolCallScanner.scan(text, syntax: syntax, final: final)
        switch scan.progress {
        case .text:
            let bytes = text.utf8.count
            // A possible marker start is held, and the space before it: a reply's content ends trimmed before its calls.
            var end = bytes - (final ? 0 : ToolCallScanner.heldBack(text, syntax: syntax))
            if !final {
                let utf8 = Array(text.utf8)
                while end > 0 && ToolCallScanner.isSpace(utf8[end - 1]) { end -= 1 }
            }
            sendContent(upTo: end, &deltas)
        case .invalid:
            if startedCalls == 0 || final {
                plain = startedCalls == 0
                if plain { sendContent(upTo: text.utf8.count, &deltas) }
            }
        case .partial, .complete:
            // Text before the calls goes out without the space that leads into them, as the whole answer trims it.
            sendContent(upTo: ToolCallStream.trimmedEnd(scan.content).utf8.count, &deltas)
            for (index, call) in scan.calls.enumerated() {
                guard let name = call.name else { break }
                if index >= argumentsSent.count {
                    argumentsSent.append(0)
                    ids.append(OpenAIService.newID("call_"))
                    deltas.append(.callStart(index: index, id: ids[index], name: name))
                }
                let arguments = Array(call.arguments.utf8)
                if arguments.count > argumentsSent[index] {
                    deltas.append(.arguments(index: index, fragment: String(decoding: arguments[argumentsSent[index]...], as: UTF8.self)))
                    argumentsSent[index] = arguments.count
                }
            }
        }
        return deltas
    }

    private mutating func sendContent(upTo end: Int, _ deltas: inout [Delta]) {
        let bytes = Array(text.utf8)
        guard end > contentSent else { return }
        deltas.append(.content(String(decoding: bytes[contentSent..<end], as: UTF8.self)))
        contentSent = end
    }

    static func trimmedEnd(_ s: String) -> String {
        let bytes = Array(s.utf8)
        var end = bytes.count
        while end > 0 && ToolCallScanner.isSpace(bytes[end - 1]) { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

/// A whole reply read for calls: the message's content and calls, or the text as it was when it holds none.
struct ParsedReply: Equatable {
    var content: String?
    var calls: [(name: String, arguments: String)]

    static func == (a: ParsedReply, b: ParsedReply) -> Bool {
        a.content == b.content && a.calls.map(\.name) == b.calls.map(\.name) && a.calls.map(\.arguments) == b.calls.map(\.arguments)
    }

    init(content: String?, calls: [(name: String, arguments: String)]) {
        self.content = content
        self.calls = calls
    }

    init(_ text: String, syntax: ToolCallSyntax) {
        let scan = ToolCallScanner.scan(text, syntax: syntax, final: true)
        // Text after the calls (only an unconstrained `auto` reply can have any) is dropped, as the stream drops it.
        guard case .complete = scan.progress, !scan.calls.isEmpty else {
            self.init(content: text, calls: [])
            return
        }
        let content = ToolCallStream.trimmedEnd(scan.content)
        self.init(content: content.isEmpty ? nil : content,
                  calls: scan.calls.map { ($0.name ?? "", $0.arguments) })
    }
}
