// How fast the lot drains (admissions per second, from recent admissions), for honest Retry-After values.
import Inference

struct DrainRate: Sendable {
    private var times: [Double] = []
    private let window = 32

    mutating func recordAdmission(at now: Double) {
        times.append(now)
        if times.count > window { times.removeFirst(times.count - window) }
    }

    /// Admissions per second over the recent ones still relevant (within 60 s); nil until two are seen.
    func rate(now: Double) -> Double? {
        let recent = times.filter { now - $0 <= 60 }
        guard recent.count >= 2, let first = recent.first else { return nil }
        let span = Swift.max(now, recent.last!) - first
        guard span > 0 else { return nil }
        return Double(recent.count - 1) / span
    }

    /// Whole seconds until `ahead` waiting jobs have drained at the observed rate; at least 1, at most 60.
    func retryAfter(ahead: Int, now: Double) -> Int {
        guard let r = rate(now: now), r > 0 else { return 1 }
        let seconds = (Double(ahead + 1) / r).rounded(.up)
        return Int(Swift.min(60, Swift.max(1, seconds)))
    }
}
