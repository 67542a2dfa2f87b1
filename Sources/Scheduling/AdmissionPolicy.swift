// Who goes first: the admission policy decides the lot's order, eviction, overtaking, and whether priority work may
// take decode rows, blocks and prefill from lower classes. The lot and the engine loop ask it; they never test a kind.
import Inference

protocol AdmissionPolicy: Sendable {
    /// The class a waiter competes in now.
    func effectivePriority(_ e: Lot.Entry, now: Double) -> Priority
    /// Admission order of the waiters.
    func ordered(_ entries: [Lot.Entry], now: Double) -> [Lot.Entry]
    /// The waiter a full lot gives up for `arrival`, if any.
    func evictionVictim(among entries: [Lot.Entry], for arrival: Lot.Entry, now: Double) -> Lot.Entry?
    /// How often a waiter that does not fit may be passed by later ones that do; nil: never (admission stops there).
    var maxOvertakes: Int? { get }
    /// Whether waiting high/critical work may take decode rows (suspension) and blocks (preemption) from running
    /// lower-priority work, and prefill before it.
    var servesPriorityFirst: Bool { get }
    /// Waiters that drain before a new arrival of `priority` (for Retry-After).
    func ahead(of priority: Priority, in entries: [Lot.Entry], now: Double) -> Int
}

extension AdmissionPolicy {
    /// The waiter a decode row would be taken for: the first high or critical job in admission order, if it fits
    /// `freeBlocks` (one that does not waits for preemption, which frees blocks).
    func rowCandidate(in entries: [Lot.Entry], freeBlocks: Int, now: Double) -> Lot.Entry? {
        guard servesPriorityFirst, let e = ordered(entries, now: now).first(where: { $0.priority >= .high }),
              e.cost <= freeBlocks else { return nil }
        return e
    }

    /// The waiter preemption would serve: the first high or critical job in admission order that has waited
    /// longer than `preemptAfter` this time.
    func preemptionCandidate(in entries: [Lot.Entry], now: Double, preemptAfter: Double) -> Lot.Entry? {
        guard servesPriorityFirst else { return nil }
        return ordered(entries, now: now).first {
            $0.priority >= .high && !$0.holdsBlocks && now - $0.parkedAt > preemptAfter
        }
    }

    /// Waiters that drain before a new arrival of `priority` (for Retry-After).
    func ahead(of priority: Priority, in entries: [Lot.Entry], now: Double) -> Int {
        entries.filter { effectivePriority($0, now: now) >= priority }.count
    }
}

/// Plain first-come admission: the A/B baseline. Nothing passes a head that does not fit, nothing is evicted.
struct FIFOAdmission: AdmissionPolicy {
    func effectivePriority(_ e: Lot.Entry, now: Double) -> Priority { .normal }

    func ordered(_ entries: [Lot.Entry], now: Double) -> [Lot.Entry] {
        entries.sorted { ($0.resumed ? 0 : 1, $0.seq) < ($1.resumed ? 0 : 1, $1.seq) }
    }

    func evictionVictim(among entries: [Lot.Entry], for arrival: Lot.Entry, now: Double) -> Lot.Entry? { nil }

    var maxOvertakes: Int? { nil }
    var servesPriorityFirst: Bool { false }

    /// Everyone waiting is ahead: arrival order is the only order.
    func ahead(of priority: Priority, in entries: [Lot.Entry], now: Double) -> Int { entries.count }
}

/// Priorities with aging, bounded overtaking, eviction of the newest lowest waiter, and priority work first.
struct ParkingLotAdmission: AdmissionPolicy {
    /// A waiter rises one class per this many seconds; 0 disables aging.
    var agingSeconds: Double
    var overtakes: Int

    func effectivePriority(_ e: Lot.Entry, now: Double) -> Priority {
        guard agingSeconds > 0 else { return e.priority }
        let steps = Int(Swift.max(0, now - e.enqueuedAt) / agingSeconds)
        return Priority(rawValue: Swift.min(Priority.critical.rawValue, e.priority.rawValue + steps)) ?? .critical
    }

    /// Higher class first; within a class, resumed jobs first, then arrival order.
    func ordered(_ entries: [Lot.Entry], now: Double) -> [Lot.Entry] {
        entries
            .map { (e: $0, p: effectivePriority($0, now: now).rawValue) }
            .sorted { a, b in
                if a.p != b.p { return a.p > b.p }
                if a.e.resumed != b.e.resumed { return a.e.resumed }
                return a.e.seq < b.e.seq
            }
            .map(\.e)
    }

    /// The newest waiter of the lowest class, if that class is below the arrival's; resumed jobs are never evicted
    /// (they were admitted once and hold the client's stream open).
    func evictionVictim(among entries: [Lot.Entry], for arrival: Lot.Entry, now: Double) -> Lot.Entry? {
        let victim = entries.filter { !$0.resumed }.min { a, b in
            let pa = effectivePriority(a, now: now), pb = effectivePriority(b, now: now)
            return pa != pb ? pa < pb : a.seq > b.seq
        }
        guard let victim, effectivePriority(victim, now: now) < arrival.priority else { return nil }
        return victim
    }

    var maxOvertakes: Int? { overtakes }
    var servesPriorityFirst: Bool { true }
}

extension SchedulerConfig {
    var policy: any AdmissionPolicy {
        switch kind {
        case .fifo: FIFOAdmission()
        case .parkingLot: ParkingLotAdmission(agingSeconds: agingSeconds, overtakes: maxOvertakes)
        }
    }
}
