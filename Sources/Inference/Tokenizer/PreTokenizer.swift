// Splits text into the pieces byte-level BPE merges within, following the pattern named by `tokenizer.ggml.pre`.

/// The split rules llama.cpp applies for each `tokenizer.ggml.pre` value, written as hand scanners
/// (some 40 times faster than the same pattern as a Swift Regex, measured) that give the same cuts as the
/// regular expressions, including their backtracking on whitespace runs.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`.
    case gpt2
    /// Every digit on its own, then the GPT-2 pattern (StarCoder / SmolLM).
    case smollm
    /// Llama 3: case-insensitive contractions, an optional non-letter before letters, up to three digits
    /// together, punctuation runs that keep their trailing newlines, newline-ending whitespace runs.
    case llama3
    /// The Llama 3 pattern with single digits.
    case qwen2
    /// llama.cpp's fallback: punctuation runs, then GPT-2, then digit runs, then groups of three ASCII digits.
    case `default`

    /// The rule for a `tokenizer.ggml.pre` value, or nil when Valet does not know it.
    public init?(ggufName: String) {
        switch ggufName {
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b": self = .smollm
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral", "dbrx", "smaug-bpe": self = .llama3
        case "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez": self = .qwen2
        case "gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "exaone4": self = .gpt2
        case "default", "": self = .default
        default: return nil
        }
    }

    /// Byte ranges of the pieces of `text`, in order, covering all of it.
    public func split(_ text: String) -> [Range<Int>] {
        var scalars = ScalarText()
        var ends: [Int] = []
        var text = text
        return text.withUTF8 { bytes in
            scalars.load(bytes)
            split(scalars, into: &ends)
            var ranges: [Range<Int>] = []
            ranges.reserveCapacity(ends.count)
            var start = 0
            for e in ends {
                ranges.append(scalars.offsets[start]..<scalars.offsets[e])
                start = e
            }
            return ranges
        }
    }

    /// Appends the scalar index where each piece ends.
    func split(_ t: ScalarText, into ends: inout [Int]) {
        ends.removeAll(keepingCapacity: true)
        let n = t.count
        guard n > 0 else { return }
        switch self {
        case .gpt2:
            Self.gpt2(t, 0, n, &ends)
        case .smollm:
            var i = 0
            while i < n {
                if t.flags[i] & ScalarText.number != 0 {
                    i += 1
                    ends.append(i)
                } else {
                    var k = i + 1
                    while k < n && t.flags[k] & ScalarText.number == 0 { k += 1 }
                    Self.gpt2(t, i, k, &ends)
                    i = k
                }
            }
        case .llama3, .qwen2:
            let maxDigits = self == .llama3 ? 3 : 1
            var i = 0
            while i < n {
                i = Self.llama3Match(t, i, n, maxDigits: maxDigits)
                ends.append(i)
            }
        case .default:
            // Each stage refines the pieces of the previous one, as llama.cpp runs its expressions in turn.
            var pieces: [Int] = []
            Self.runs(t, 0, n, of: ScalarText.punctuation, &pieces)
            for stage in 0..<3 {
                var next: [Int] = []
                var start = 0
                for e in pieces {
                    switch stage {
                    case 0: Self.gpt2(t, start, e, &next)
                    case 1: Self.runs(t, start, e, of: ScalarText.number, &next)
                    default: Self.asciiDigitTriples(t, start, e, &next)
                    }
                    start = e
                }
                pieces = next
            }
            ends = pieces
        }
    }

    // MARK: Scanners (each appends piece ends for the scalars in a..<b)

    static func gpt2(_ t: ScalarText, _ a: Int, _ b: Int, _ ends: inout [Int]) {
        var i = a
        while i < b {
            i = gpt2Match(t, i, b)
            ends.append(i)
        }
    }

    @inline(__always)
    static func contraction(_ t: ScalarText, _ i: Int, _ b: Int, foldCase: Bool) -> Int? {
        guard t.values[i] == 0x27, i + 1 < b else { return nil }
        func fold(_ v: UInt32) -> UInt32 { foldCase && v >= 0x41 && v <= 0x5A ? v | 0x20 : v }
        let c1 = fold(t.values[i + 1])
        // s t m d
        if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return i + 2 }
        guard i + 2 < b else { return nil }
        let c2 = fold(t.values[i + 2])
        // re ve ll
        if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) { return i + 3 }
        return nil
    }

    /// The end of the GPT-2 pattern's match at `i`; a lone whitespace before a non-space matches nothing
    /// there, so it becomes a piece of its own, as the text between regex matches does.
    static func gpt2Match(_ t: ScalarText, _ i: Int, _ b: Int) -> Int {
        if let e = contraction(t, i, b, foldCase: false) { return e }
        let f = t.flags
        let letter = ScalarText.letter, number = ScalarText.number, space = ScalarText.space
        var j = i
        if t.values[i] == 0x20, i + 1 < b, f[i + 1] & space == 0 { j = i + 1 }
        let fj = f[j]
        if fj & space == 0 {
            var k = j + 1
            if fj & letter != 0 {
                while k < b && f[k] & letter != 0 { k += 1 }
            } else if fj & number != 0 {
                while k < b && f[k] & number != 0 { k += 1 }
            } else {
                while k < b && f[k] & (letter | number | space) == 0 { k += 1 }
            }
            return k
        }
        var k = i + 1
        while k < b && f[k] & space != 0 { k += 1 }
        if k == b { return b }
        if k - i >= 2 { return k - 1 }
        return i + 1
    }

    static func llama3Match(_ t: ScalarText, _ i: Int, _ b: Int, maxDigits: Int) -> Int {
        if let e = contraction(t, i, b, foldCase: true) { return e }
        let f = t.flags, v = t.values
        let letter = ScalarText.letter, number = ScalarText.number, space = ScalarText.space
        let c = v[i], fc = f[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if fc & letter != 0 || (c != 0x0A && c != 0x0D && fc & number == 0 && i + 1 < b && f[i + 1] & letter != 0) {
            var k = fc & letter != 0 ? i + 1 : i + 2
            while k < b && f[k] & letter != 0 { k += 1 }
            return k
        }
        // \p{N}{1,maxDigits}
        if fc & number != 0 {
            var k = i + 1
            while k < b && k - i < maxDigits && f[k] & number != 0 { k += 1 }
            return k
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        var j = i
        if c == 0x20, i + 1 < b, f[i + 1] & (letter | number | space) == 0 { j = i + 1 }
        if f[j] & (letter | number | space) == 0 {
            var k = j + 1
            while k < b && f[k] & (letter | number | space) == 0 { k += 1 }
            while k < b && (v[k] == 0x0A || v[k] == 0x0D) { k += 1 }
            return k
        }
        // Whitespace: \s*[\r\n]+ ends at the run's last newline; else \s+(?!\S), else \s+.
        var k = i + 1
        while k < b && f[k] & space != 0 { k += 1 }
        var p = k - 1
        while p >= i {
            if v[p] == 0x0A || v[p] == 0x0D { return p + 1 }
            p -= 1
        }
        if k == b { return b }
        if k - i >= 2 { return k - 1 }
        return k
    }

    /// Alternating runs of scalars with and without `flag` (an isolating split on `[class]+`).
    static func runs(_ t: ScalarText, _ a: Int, _ b: Int, of flag: UInt8, _ ends: inout [Int]) {
        var i = a
        while i < b {
            let inside = t.flags[i] & flag != 0
            var k = i + 1
            while k < b && (t.flags[k] & flag != 0) == inside { k += 1 }
            ends.append(k)
            i = k
        }
    }

    /// Isolates each leftmost `[0-9][0-9][0-9]`.
    static func asciiDigitTriples(_ t: ScalarText, _ a: Int, _ b: Int, _ ends: inout [Int]) {
        func digit(_ k: Int) -> Bool { t.values[k] >= 0x30 && t.values[k] <= 0x39 }
        var i = a, gap = a
        while i + 3 <= b {
            if digit(i) && digit(i + 1) && digit(i + 2) {
                if gap < i { ends.append(i) }
                i += 3
                ends.append(i)
                gap = i
            } else {
                i += 1
            }
        }
        if gap < b { ends.append(b) }
    }
}

/// Text decoded to scalars once, with the character classes the split patterns test.
struct ScalarText {
    static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4, punctuation: UInt8 = 8

    var values: [UInt32] = []
    var flags: [UInt8] = []
    /// Byte offset of each scalar, plus the total length at the end.
    var offsets: [Int] = []
    var count: Int { values.count }

    mutating func load(_ bytes: UnsafeBufferPointer<UInt8>) {
        values.removeAll(keepingCapacity: true)
        flags.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        values.reserveCapacity(bytes.count)
        flags.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            var len: Int
            // The bytes come from a Swift String, so they are valid UTF-8.
            if b0 < 0x80 { v = b0; len = 1 }
            else if b0 < 0xE0 { v = b0 & 0x1F; len = 2 }
            else if b0 < 0xF0 { v = b0 & 0x0F; len = 3 }
            else { v = b0 & 0x07; len = 4 }
            if len > 1 {
                for k in 1..<min(len, n - i) { v = v << 6 | UInt32(bytes[i + k] & 0x3F) }
            }
            values.append(v)
            flags.append(v < 128 ? Self.asciiFlags[Int(v)] : Self.classify(v))
            offsets.append(i)
            i += len
        }
        offsets.append(n)
    }

    static let asciiFlags: [UInt8] = (0..<128).map { classify(UInt32($0)) }

    static func classify(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return 0 }
        let p = s.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return punctuation
        default:
            // llama.cpp's fallback pattern groups these symbols with punctuation: $ + < = > ^ ~ |
            switch v {
            case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return punctuation
            default: return 0
            }
        }
    }
}
