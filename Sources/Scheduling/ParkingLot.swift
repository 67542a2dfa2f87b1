// The lot's admission rules as a value type with no threads and no clock: priorities, FIFO within a class, aging,
// bounded overtaking, eviction and timeouts. The scheduler drives it under its lock, tests drive it directly.
import Inference

struct ParkingLot: Sendable {
    struct Entry: Sendable, Equatable {
        /// Arrival order (unique, increasing): FIFO key within a class.
        let seq: UInt64
        let cost: Int
        let priority: Priority
        let enqueuedAt: Double
        /// Absolute monotonic deadline; nil for a preempted job (it was admitted once, it never times out).
        let deadline: Double?
        /// Since when it waits in the lot this time (preemption restarts it).
        var parkedAt: Double
        /// Preempted and waiting to resume: head of its class, never evicted.
        var resumed = false
        /// How many later jobs passed it while it did not fit.
        var overtaken = 0
        /// Suspended: still holds its KV blocks and cache (cost 0), waits only for a decode row.
        var holdsBlocks = false

        init(seq: UInt64, cost: Int, priority: Priority, enqueuedAt: Double, deadline: Double?) {
            self.seq = seq
            self.cost = cost
            self.priority = priority
            self.enqueuedAt = enqueuedAt
            self.deadline = deadline
            parkedAt = enqueuedAt
        }
    }

    enum Offer: Sendable, Equatable {
        case parked
        /// Parked after pushing this waiter out.
        case parkedEvicting(Entry)
        case full
    }

    let kind: SchedulerConfig.Kind
    let maxQueue: Int
    let agingSeconds: Double
    let maxOvertakes: Int
    private(set) var entries: [Entry] = []

    init(kind: SchedulerConfig.Kind, maxQueue: Int, agingSeconds: Double, maxOvertakes: Int) {
        self.kind = kind
        self.maxQueue = maxQueue
        self.agingSeconds = agingSeconds
        self.maxOvertakes = maxOvertakes
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The class a waiter competes in now: its own, raised one step per `agingSeconds` waited.
    func effectivePriority(_ e: Entry, now: Double) -> Priority {
        guard kind == .parkingLot else { return .normal }
        guard agingSeconds > 0 else { return e.priority }
        let steps = Int(Swift.max(0, now - e.enqueuedAt) / agingSeconds)
        return Priority(rawValue: Swift.min(Priority.critical.rawValue, e.priority.rawValue + steps)) ?? .critical
    }

    /// Admission order: higher class first; within a class, resumed jobs first, then arrival order.
    func ordered(now: Double) -> [Entry] {
        if kind == .fifo { return entries.sorted { ($0.resumed ? 0 : 1, $0.seq) < ($1.resumed ? 0 : 1, $1.seq) } }
        return entries
            .map { (e: $0, p: effectivePriority($0, now: now).rawValue) }
            .sorted { a, b in
                if a.p != b.p { return a.p > b.p }
                if a.e.resumed != b.e.resumed { return a.e.resumed }
                return a.e.seq < b.e.seq
            }
            .map(\.e)
    }

    private var boundedCount: Int { entries.reduce(0) { $0 + ($1.resumed ? 0 : 1) } }

    /// An arrival: parked if there is room; in a full parking-lot, a higher-priority arrival evicts the newest waiter
    /// of the lowest class (resumed jobs are never evicted); otherwise the lot is full.
    mutating func offer(_ e: Entry, now: Double) -> Offer {
        if boundedCount < maxQueue {
            entries.append(e)
            return .parked
        }
        guard kind == .parkingLot else { return .full }
        let victim = entries.filter { !$0.resumed }.min { a, b in
            let pa = effectivePriority(a, now: now), pb = effectivePriority(b, now: now)
            return pa != pb ? pa < pb : a.seq > b.seq
        }
        guard let victim, effectivePriority(victim, now: now) < e.priority else { return .full }
        _ = remove(victim.seq)
        entries.append(e)
        return .parkedEvicting(victim)
    }

    /// A preempted job comes back: at the head of its class, always accepted.
    mutating func requeue(_ e: Entry, now: Double) {
        var back = Entry(seq: e.seq, cost: e.cost, priority: e.priority, enqueuedAt: e.enqueuedAt, deadline: nil)
        back.resumed = true
        back.parkedAt = now
        entries.append(back)
    }

    /// A running sequence gave its decode row to higher-priority work but kept its blocks: it waits, head of its
    /// class like a preempted job, for a row only (cost 0), and is never timed out or evicted.
    mutating func suspend(seq: UInt64, priority: Priority, enqueuedAt: Double, now: Double) {
        var back = Entry(seq: seq, cost: 0, priority: priority, enqueuedAt: enqueuedAt, deadline: nil)
        back.resumed = true
        back.holdsBlocks = true
        back.parkedAt = now
        entries.append(back)
    }

    @discardableResult
    mutating func remove(_ seq: UInt64) -> Entry? {
        guard let i = entries.firstIndex(where: { $0.seq == seq }) else { return nil }
        return entries.remove(at: i)
    }

    /// Waiters whose deadline has passed (not removed: the caller ends them through the cancellation path).
    func expired(now: Double) -> [Entry] {
        entries.filter { e in e.deadline.map { now >= $0 } ?? false }
    }

    /// The soonest moment something changes by itself (a deadline or an aging step), for the idle loop's sleep.
    func nextEvent(after now: Double) -> Double? {
        var t: Double? = nil
        for e in entries {
            if let d = e.deadline { t = Swift.min(t ?? d, d) }
            if kind == .parkingLot && agingSeconds > 0 && e.priority < .critical {
                let waited = Swift.max(0, now - e.enqueuedAt)
                let step = e.enqueuedAt + (waited / agingSeconds).rounded(.down) * agingSeconds + agingSeconds
                t = Swift.min(t ?? step, step)
            }
        }
        return t
    }

    /// Takes out, in order, the waiters to admit given free blocks and free batch slots.
    /// parking-lot: a waiter that does not fit may be passed by later ones that do, each blocked waiter at most
    /// `maxOvertakes` times; fifo: admission stops at the first waiter that does not fit.
    mutating func admit(freeBlocks: Int, freeSlots: Int, now: Double) -> [Entry] {
        var free = freeBlocks
        var slots = freeSlots
        var admitted: [Entry] = []
        var blockers: [UInt64] = []
        var passes: [UInt64: Int] = [:]
        for e in ordered(now: now) {
            guard slots > 0 else { break }
            if e.holdsBlocks {
                // Takes no blocks, so it costs a blocked head nothing: not an overtake.
                admitted.append(e)
                slots -= 1
            } else if e.cost <= free {
                if kind == .parkingLot {
                    let blocked = blockers.contains { seq in
                        (entries.first { $0.seq == seq }?.overtaken ?? 0) + passes[seq, default: 0] >= maxOvertakes
                    }
                    if blocked { break }
                    for b in blockers { passes[b, default: 0] += 1 }
                }
                admitted.append(e)
                free -= e.cost
                slots -= 1
            } else {
                if kind == .fifo { break }
                blockers.append(e.seq)
            }
        }
        for i in entries.indices { entries[i].overtaken += passes[entries[i].seq, default: 0] }
        let taken = Set(admitted.map(\.seq))
        entries.removeAll { taken.contains($0.seq) }
        return admitted
    }

    /// The waiter preemption would serve: the first (in admission order) high or critical job that has waited in the
    /// lot longer than `preemptAfter` this time. Only meaningful right after `admit` left it parked.
    func preemptionCandidate(now: Double, preemptAfter: Double) -> Entry? {
        guard kind == .parkingLot else { return nil }
        return ordered(now: now).first {
            $0.priority >= .high && !$0.holdsBlocks && now - $0.parkedAt > preemptAfter
        }
    }

    /// The waiter a decode row would be taken for: the first (in admission order) high or critical job, if it fits
    /// `freeBlocks` (one that does not waits for preemption, which frees blocks).
    func rowCandidate(freeBlocks: Int, now: Double) -> Entry? {
        guard kind == .parkingLot, let e = ordered(now: now).first(where: { $0.priority >= .high }),
              e.cost <= freeBlocks else { return nil }
        return e
    }

    /// Waiters of at least `priority`'s class now (how many drain before a new arrival).
    func ahead(of priority: Priority, now: Double) -> Int {
        guard kind == .parkingLot else { return entries.count }
        return entries.filter { effectivePriority($0, now: now) >= priority }.count
    }

    func countByPriority() -> [Priority: Int] {
        var out: [Priority: Int] = [:]
        for p in Priority.allCases { out[p] = 0 }
        for e in entries { out[e.priority, default: 0] += 1 }
        return out
    }
}
