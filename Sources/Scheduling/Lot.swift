// The lot: jobs waiting for capacity, as a value type with no threads and no clock. Its order, eviction and
// overtaking come from the admission policy; the scheduler drives it under its lock, tests drive it directly.
import Inference

struct Lot: Sendable {
    struct Entry: Sendable, Equatable {
        /// Arrival order (unique, increasing): FIFO key within a class.
        let seq: UInt64
        /// Blocks of its whole sequence (prompt plus generation), none found cached: an upper bound on what it takes
        /// from capacity. Admission through the block manager charges less for the cached prefix it will share.
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

    let policy: any AdmissionPolicy
    let maxQueue: Int
    private(set) var entries: [Entry] = []

    init(policy: any AdmissionPolicy, maxQueue: Int) {
        self.policy = policy
        self.maxQueue = maxQueue
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    func effectivePriority(_ e: Entry, now: Double) -> Priority { policy.effectivePriority(e, now: now) }
    func ordered(now: Double) -> [Entry] { policy.ordered(entries, now: now) }

    /// Resumed jobs do not count against `maxQueue`: they were admitted once and must always find a place.
    private var boundedCount: Int { entries.reduce(0) { $0 + ($1.resumed ? 0 : 1) } }

    /// An arrival: parked if there is room; in a full lot, the policy may give up a waiter for it.
    mutating func offer(_ e: Entry, now: Double) -> Offer {
        if boundedCount < maxQueue {
            entries.append(e)
            return .parked
        }
        guard let victim = policy.evictionVictim(among: entries, for: e, now: now) else { return .full }
        remove(victim.seq)
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

    /// Takes out, in order, the waiters to admit given free blocks and free decode rows, each at its stored cost.
    mutating func admit(freeBlocks: Int, freeSlots: Int, now: Double) -> [Entry] {
        var free = freeBlocks
        return admit(freeSlots: freeSlots, now: now) { e, commit in
            guard e.cost <= free else { return false }
            if commit { free -= e.cost }
            return true
        }
    }

    /// Takes out, in order, the waiters to admit given free decode rows. `reserve(e, false)` says whether a waiter
    /// fits now; `reserve(e, true)` takes its capacity (called once per admitted waiter, right after it fit), so a
    /// cost may depend on what the waiters admitted before it took. A waiter that does not fit may be passed by
    /// later ones that do, each blocked waiter at most `policy.maxOvertakes` times.
    mutating func admit(freeSlots: Int, now: Double, reserve: (Entry, _ commit: Bool) -> Bool) -> [Entry] {
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
            } else if reserve(e, false) {
                if let limit = policy.maxOvertakes {
                    let blocked = blockers.contains { seq in
                        (entries.first { $0.seq == seq }?.overtaken ?? 0) + passes[seq, default: 0] >= limit
                    }
                    if blocked { break }
                    for b in blockers { passes[b, default: 0] += 1 }
                }
                _ = reserve(e, true)
                admitted.append(e)
                slots -= 1
            } else {
                guard policy.maxOvertakes != nil else { break }
                blockers.append(e.seq)
            }
        }
        for i in entries.indices { entries[i].overtaken += passes[entries[i].seq, default: 0] }
        let taken = Set(admitted.map(\.seq))
        entries.removeAll { taken.contains($0.seq) }
        return admitted
    }

    func rowCandidate(freeBlocks: Int, now: Double) -> Entry? {
        policy.rowCandidate(in: entries, freeBlocks: freeBlocks, now: now)
    }

    func preemptionCandidate(now: Double, preemptAfter: Double) -> Entry? {
        policy.preemptionCandidate(in: entries, now: now, preemptAfter: preemptAfter)
    }

    func ahead(of priority: Priority, now: Double) -> Int { policy.ahead(of: priority, in: entries, now: now) }

    func countByPriority() -> [Priority: Int] {
        var out: [Priority: Int] = [:]
        for p in Priority.allCases { out[p] = 0 }
        for e in entries { out[e.priority, default: 0] += 1 }
        return out
    }
}
