// A regular expression over Unicode scalars as a value: what `pattern` parses to and string formats are written in,
// before it becomes a `CharAutomaton`.

indirect enum RegexNode: Hashable, Sendable {
    /// One scalar from the set.
    case set(ScalarSet)
    /// Each part in turn; empty: the empty string.
    case sequence([RegexNode])
    /// Any one alternative.
    case choice([RegexNode])
    /// `min` to `max` copies (`max` nil: unbounded).
    case repeated(RegexNode, min: Int, max: Int?)

    static let empty = RegexNode.sequence([])

    static func literal(_ s: String) -> RegexNode { .sequence(s.unicodeScalars.map { .set(ScalarSet([$0.value...$0.value])) }) }

    /// Any string at all (the unanchored sides of a `pattern`).
    static let anything = RegexNode.repeated(.set(.all), min: 0, max: nil)
}
