// Finds control and user-defined token texts in a prompt so they become their single token ids.

struct SpecialTokenMatcher: Sendable {
    struct Entry: Sendable {
        var bytes: [UInt8]
        var id: Int32
        /// User-defined tokens are always matched; control and unknown tokens only when parsing specials.
        var always: Bool
    }

    /// Entries by first byte, longest first, so the scan only tries tokens that can start at a position.
    private var buckets: [[Entry]]
    let isEmpty: Bool

    init(_ entries: [Entry]) {
        var b = [[Entry]](repeating: [], count: 256)
        for e in entries where !e.bytes.isEmpty { b[Int(e.bytes[0])].append(e) }
        for i in 0..<256 { b[i].sort { $0.bytes.count > $1.bytes.count } }
        buckets = b
        isEmpty = entries.isEmpty
    }

    /// The leftmost-longest special token starting at `i`, if any.
    @inline(__always)
    func match(_ text: UnsafeBufferPointer<UInt8>, at i: Int, parseSpecial: Bool) -> Entry? {
        let bucket = buckets[Int(text[i])]
        if bucket.isEmpty { return nil }
        for e in bucket where (parseSpecial || e.always) && e.bytes.count <= text.count - i {
            var k = 1
            while k < e.bytes.count && e.bytes[k] == text[i + k] { k += 1 }
            if k == e.bytes.count { return e }
        }
        return nil
    }
}
