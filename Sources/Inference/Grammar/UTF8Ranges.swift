// Splits a range of Unicode scalars into sequences of byte ranges whose concatenations are exactly the UTF-8
// encodings of the range, so a character class becomes a handful of byte paths in the automaton.

enum UTF8Ranges {
    /// Every sequence has one byte range per encoded byte; any choice of bytes within the ranges is valid UTF-8 for a
    /// scalar in `range` (which must not contain surrogates).
    static func sequences(_ range: ClosedRange<UInt32>) -> [[ClosedRange<UInt8>]] {
        var out: [[ClosedRange<UInt8>]] = []
        var pending = [range]
        while let r = pending.popLast() {
            // Split at the encoding-length boundaries first.
            var split = false
            for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where r.lowerBound <= boundary && r.upperBound > boundary {
                pending.append((boundary + 1)...r.upperBound)
                pending.append(r.lowerBound...boundary)
                split = true
                break
            }
            if split { continue }
            let n = length(r.lowerBound)
            if n == 1 {
                out.append([UInt8(r.lowerBound)...UInt8(r.upperBound)])
                continue
            }
            // Then until each trailing 6-bit group spans its full range wherever the leading bytes differ.
            for i in 1..<n {
                let mask: UInt32 = (1 << (6 * UInt32(i))) - 1
                if r.lowerBound & ~mask != r.upperBound & ~mask {
                    if r.lowerBound & mask != 0 {
                        pending.append(((r.lowerBound | mask) + 1)...r.upperBound)
                        pending.append(r.lowerBound...(r.lowerBound | mask))
                        split = true
                        break
                    }
                    if r.upperBound & mask != mask {
                        pending.append((r.upperBound & ~mask)...r.upperBound)
                        pending.append(r.lowerBound...((r.upperBound & ~mask) - 1))
                        split = true
                        break
                    }
                }
            }
            if split { continue }
            let lo = encode(r.lowerBound), hi = encode(r.upperBound)
            out.append(zip(lo, hi).map { $0...$1 })
        }
        return out
    }

    static func length(_ v: UInt32) -> Int {
        v <= 0x7F ? 1 : v <= 0x7FF ? 2 : v <= 0xFFFF ? 3 : 4
    }

    static func encode(_ v: UInt32) -> [UInt8] {
        switch length(v) {
        case 1: [UInt8(v)]
        case 2: [UInt8(0xC0 | (v >> 6)), UInt8(0x80 | (v & 0x3F))]
        case 3: [UInt8(0xE0 | (v >> 12)), UInt8(0x80 | ((v >> 6) & 0x3F)), UInt8(0x80 | (v & 0x3F))]
        default: [UInt8(0xF0 | (v >> 18)), UInt8(0x80 | ((v >> 12) & 0x3F)), UInt8(0x80 | ((v >> 6) & 0x3F)),
                  UInt8(0x80 | (v & 0x3F))]
        }
    }
}
