// Bounded numbers as grammars: the JSON integers of a range digit by digit (no leading zeros, no `-0`), and
// bounded decimals built on them.
import Inference

enum NumberRange {
    /// Exactly the integers `low...high` (nil: unbounded on that side), as JSON writes them. `low <= high`.
    static func integers(_ low: Int?, _ high: Int?) -> GrammarExpr {
        var parts: [GrammarExpr] = []
        // Negative values: a minus and a magnitude from -min(high, -1) up to -low.
        let topNegative = min(high ?? -1, -1)
        if low.map({ $0 <= topNegative }) ?? true {
            parts.append(.sequence([.text("-"), magnitudes(-topNegative, low.map { -$0 })]))
        }
        let bottom = max(low ?? 0, 0)
        if high.map({ $0 >= bottom }) ?? true { parts.append(magnitudes(bottom, high)) }
        return parts.count == 1 ? parts[0] : .choice(parts)
    }

    /// Fraction digits a bounded decimal may have: few enough that no such decimal rounds, as a double, onto an
    /// integer it was chosen to stay below.
    static let fractionDigits = 6
    /// Integer parts of bounded decimals stay below this, for the same reason.
    static let decimalMagnitudeLimit = 999_999_999

    /// Numbers between bounds, given as the integers that meet them (`low...high`) and the real bounds
    /// themselves (`floor`, `ceiling`, inclusive or not). The integers of the range, and decimals `k.f` (at most
    /// `fractionDigits` digits, no exponent) whose whole interval between consecutive integers lies inside.
    /// Values closer to a fractional bound than the next integer are left out. Nil: nothing can be written.
    static func decimals(low: Int?, high: Int?, floor lower: Double?, ceiling upper: Double?) -> GrammarExpr? {
        var parts: [GrammarExpr] = []
        if low.map({ l in high.map { l <= $0 } ?? true }) ?? true { parts.append(integers(low, high)) }
        let fraction = GrammarExpr.sequence([.text("."), .repetition(JSONGrammar.digit, min: 1, max: fractionDigits)])
        // k.f with k >= 0 lies in [k, k + 1): k must meet the lower bound, k + 1 must not pass the upper.
        let positiveTop = upper.map { Int(Swift.min($0.rounded(.down), Double(decimalMagnitudeLimit) + 1)) - 1 }
            ?? decimalMagnitudeLimit
        let positiveBottom = max(low ?? 0, 0)
        if positiveBottom <= min(positiveTop, decimalMagnitudeLimit) {
            parts.append(.sequence([magnitudes(positiveBottom, min(positiveTop, decimalMagnitudeLimit)), fraction]))
        }
        // -k.f lies in (-(k + 1), -k]: -k must meet the upper bound, -(k + 1) must not pass the lower.
        let negativeTop = lower.map { Int(Swift.min((-$0).rounded(.down), Double(decimalMagnitudeLimit) + 1)) - 1 }
            ?? decimalMagnitudeLimit
        let negativeBottom = max(high.map { -$0 } ?? 0, 0)
        if negativeBottom <= min(negativeTop, decimalMagnitudeLimit) {
            parts.append(.sequence([.text("-"), magnitudes(negativeBottom, min(negativeTop, decimalMagnitudeLimit)), fraction]))
        }
        if parts.isEmpty { return nil }
        return parts.count == 1 ? parts[0] : .choice(parts)
    }

    /// Non-negative integers `low...high` (`high` nil: unbounded) without leading zeros.
    static func magnitudes(_ low: Int, _ high: Int?) -> GrammarExpr {
        let lowDigits = digits(low)
        guard let high else {
            // The rest of low's length, then any longer number.
            let longer = GrammarExpr.sequence([JSONGrammar.nonZero, .repetition(JSONGrammar.digit, min: lowDigits.count, max: nil)])
            return .choice([sameLength(lowDigits, Array(repeating: 9, count: lowDigits.count)), longer])
        }
        let highDigits = digits(high)
        var parts: [GrammarExpr] = []
        for length in lowDigits.count...highDigits.count {
            let from = length == lowDigits.count ? lowDigits : [1] + Array(repeating: 0, count: length - 1)
            let to = length == highDigits.count ? highDigits : Array(repeating: 9, count: length)
            parts.append(sameLength(from, to))
        }
        return parts.count == 1 ? parts[0] : .choice(parts)
    }

    private static func digits(_ n: Int) -> [Int] {
        String(n).compactMap { $0.wholeNumberValue }
    }

    private static func digit(_ low: Int, _ high: Int) -> GrammarExpr {
        .chars(CharClass([UInt32(48 + low)...UInt32(48 + high)]))
    }

    /// Digit strings of one length from `low` to `high` (as numbers), leading zeros allowed where `low` has them.
    private static func sameLength(_ low: [Int], _ high: [Int]) -> GrammarExpr {
        guard let a = low.first, let b = high.first else { return .empty }
        let restLow = Array(low.dropFirst()), restHigh = Array(high.dropFirst())
        if a == b { return .sequence([digit(a, a), sameLength(restLow, restHigh)]) }
        let lowIsRound = restLow.allSatisfy { $0 == 0 }, highIsFull = restHigh.allSatisfy { $0 == 9 }
        var parts: [GrammarExpr] = []
        if !lowIsRound {
            parts.append(.sequence([digit(a, a), sameLength(restLow, Array(repeating: 9, count: restLow.count))]))
        }
        let first = lowIsRound ? a : a + 1, last = highIsFull ? b : b - 1
        if first <= last {
            parts.append(.sequence([digit(first, last), .repetition(JSONGrammar.digit, min: restLow.count, max: restLow.count)]))
        }
        if !highIsFull {
            parts.append(.sequence([digit(b, b), sameLength(Array(repeating: 0, count: restHigh.count), restHigh)]))
        }
        return parts.count == 1 ? parts[0] : .choice(parts)
    }
}
