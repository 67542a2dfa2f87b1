// A chat template's output: the prompt text and which parts of it came from the conversation, so that a role
// marker typed into a message is tokenized as text and never becomes the template's own control token.

public struct RenderedPrompt: Sendable, Equatable {
    public private(set) var text = ""
    /// UTF-8 byte ranges of `text` written from message content, in order and disjoint.
    public private(set) var contentRanges: [Range<Int>] = []
    private var length = 0

    public init() {}

    /// The template's own text: control tokens are read as such.
    mutating func structure(_ s: String) {
        text += s
        length += s.utf8.count
    }

    /// Text from the conversation: only ever ordinary tokens.
    mutating func content(_ s: String) {
        guard !s.isEmpty else { return }
        let start = length
        text += s
        length += s.utf8.count
        if let last = contentRanges.last, last.upperBound == start {
            contentRanges[contentRanges.count - 1] = last.lowerBound..<length
        } else {
            contentRanges.append(start..<length)
        }
    }
}
