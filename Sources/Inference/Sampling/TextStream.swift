// A job's generated text as it streams: token bytes → whole UTF-8 characters (the tokenizer's
// StreamingDetokenizer) → stop-string matching → the text that is final.

public struct TextStream: Sendable {
    private var utf8 = StreamingDetokenizer()
    private var stopper: StopMatcher

    public init(stops: [String]) {
        stopper = StopMatcher(stops: stops)
    }

    public var matchedStop: String? { stopper.matched }

    /// Text that became final with this token, and whether a stop string ended the generation.
    public mutating func push(_ tokenBytes: [UInt8]) -> (text: String, stopped: Bool) {
        let complete = utf8.append(tokenBytes)
        let out = stopper.push(Array(complete.utf8))
        return (String(decoding: out, as: UTF8.self), stopper.matched != nil)
    }

    /// Generation ended (EOG or length): the held-back remainder, unless a stop already cut the text.
    public mutating func finish() -> String {
        guard stopper.matched == nil else { return "" }
        let rest = stopper.push(Array(utf8.flush().utf8))
        if stopper.matched != nil { return String(decoding: rest, as: UTF8.self) }
        return String(decoding: rest + stopper.flush(), as: UTF8.self)
    }
}
