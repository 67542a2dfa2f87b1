// A set of Unicode scalars as sorted, disjoint ranges: the character classes of patterns and formats, closed under
// the set operations their automata need (a product intersects edge labels).
import Inference

struct ScalarSet: Hashable, Sendable {
    /// Sorted, disjoint, non-adjacent, without surrogates.
    private(set) var ranges: [ClosedRange<UInt32>]

    init(_ ranges: [ClosedRange<UInt32>]) {
        self.ranges = CharClass(ranges).normalized
    }

    init(_ s: String) {
        self.init(s.unicodeScalars.map { $0.value...$0.value })
    }

    init(_ range: ClosedRange<Unicode.Scalar>) {
        self.init([range.lowerBound.value...range.upperBound.value])
    }

    static let all = ScalarSet([0...0x10FFFF])
    static let none = ScalarSet([])

    var isEmpty: Bool { ranges.isEmpty }

    func contains(_ v: UInt32) -> Bool {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < v { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(v)
    }

    func union(_ other: ScalarSet) -> ScalarSet { ScalarSet(ranges + other.ranges) }

    var complement: ScalarSet { ScalarSet(CharClass(ranges, negated: true).normalized) }

    func intersection(_ other: ScalarSet) -> ScalarSet {
        var out: [ClosedRange<UInt32>] = []
        var i = 0, j = 0
        while i < ranges.count && j < other.ranges.count {
            let a = ranges[i], b = other.ranges[j]
            let lo = max(a.lowerBound, b.lowerBound), hi = min(a.upperBound, b.upperBound)
            if lo <= hi { out.append(lo...hi) }
            if a.upperBound < b.upperBound { i += 1 } else { j += 1 }
        }
        return ScalarSet(out)
    }

    func subtracting(_ other: ScalarSet) -> ScalarSet { intersection(other.complement) }
}
