// The lot under both admission policies, driven directly with explicit times (no threads, no clock).
import Testing
@testable import Scheduling
import Inference

private func lot(_ kind: SchedulerConfig.Kind = .parkingLot, maxQueue: Int = 100, aging: Double = 0,
                 overtakes: Int = 3) -> Lot {
    Lot(policy: SchedulerConfig(kind: kind, agingSeconds: aging, maxOvertakes: overtakes).policy, maxQueue: maxQueue)
}

private func entry(_ seq: UInt64, _ p: Priority, cost: Int = 1, at t: Double = 0, timeout: Double = 30) -> Lot.Entry {
    Lot.Entry(seq: seq, cost: cost, priority: p, enqueuedAt: t, deadline: t + timeout)
}

/// Admits one slot at a time until the lot is empty; the admission order.
private func drainOrder(_ l: inout Lot, now: Double = 0) -> [UInt64] {
    var order: [UInt64] = []
    while !l.isEmpty {
        let got = l.admit(freeBlocks: 100, freeSlots: 1, now: now)
        if got.isEmpty { break }
        order += got.map(\.seq)
    }
    return order
}

@Suite struct LotTests {
    @Test func higherClassFirstThenFIFOWithinAClass() {
        var l = lot()
        let ps: [Priority] = [.low, .normal, .high, .low, .critical, .normal, .high]
        for (i, p) in ps.enumerated() { _ = l.offer(entry(UInt64(i + 1), p), now: 0) }
        #expect(drainOrder(&l) == [5, 3, 7, 2, 6, 1, 4])
    }

    @Test func agingRaisesAWaiterOneClassPerPeriod() {
        var l = lot(aging: 10)
        _ = l.offer(entry(1, .low, at: 0), now: 0)
        _ = l.offer(entry(2, .normal, at: 5), now: 5)
        _ = l.offer(entry(3, .high, at: 5), now: 5)
        #expect(l.ordered(now: 6).map(\.seq) == [3, 2, 1])
        #expect(l.ordered(now: 11).map(\.seq) == [3, 1, 2])  // low has become normal and arrived first
        #expect(l.effectivePriority(l.entries[0], now: 21) == .high)
        #expect(l.effectivePriority(l.entries[0], now: 1000) == .critical)
    }

    @Test func aSmallJobMayPassABlockedHeadOnlyMaxOvertakesTimes() {
        var l = lot(overtakes: 2)
        _ = l.offer(entry(1, .high, cost: 10), now: 0)
        for s in 2...6 { _ = l.offer(entry(UInt64(s), .normal, cost: 1), now: 0) }
        // 4 free blocks: the head needs 10; two small ones pass it, the third may not.
        #expect(l.admit(freeBlocks: 4, freeSlots: 8, now: 0).map(\.seq) == [2, 3])
        #expect(l.entries.first { $0.seq == 1 }?.overtaken == 2)
        #expect(l.admit(freeBlocks: 4, freeSlots: 8, now: 0).isEmpty)
        #expect(l.admit(freeBlocks: 11, freeSlots: 8, now: 0).map(\.seq) == [1, 4])
    }

    @Test func fullLotEvictsTheNewestLowestWaiterForAHigherArrival() {
        var l = lot(maxQueue: 3)
        #expect(l.offer(entry(1, .low), now: 0) == .parked)
        #expect(l.offer(entry(2, .low), now: 0) == .parked)
        #expect(l.offer(entry(3, .normal), now: 0) == .parked)
        guard case .parkedEvicting(let v) = l.offer(entry(4, .high), now: 0) else {
            Issue.record("a high arrival should evict")
            return
        }
        #expect(v.seq == 2)
        #expect(l.offer(entry(5, .low), now: 0) == .full)  // not higher than the lowest waiter
        guard case .parkedEvicting(let v2) = l.offer(entry(6, .normal), now: 0) else {
            Issue.record("a normal arrival should evict the low one")
            return
        }
        #expect(v2.seq == 1)
        #expect(l.offer(entry(7, .normal), now: 0) == .full)
        #expect(Set(l.entries.map(\.seq)) == [3, 4, 6])
    }

    @Test func resumedJobsGoFirstInTheirClassAreNeverEvictedAndDoNotTimeOut() {
        var l = lot(maxQueue: 1)
        _ = l.offer(entry(5, .low), now: 0)
        l.requeue(entry(9, .low), now: 1)
        #expect(l.ordered(now: 1).map(\.seq) == [9, 5])
        guard case .parkedEvicting(let v) = l.offer(entry(10, .high), now: 1) else {
            Issue.record("expected eviction")
            return
        }
        #expect(v.seq == 5)
        let resumed = Lot.Entry(seq: 11, cost: 1, priority: .low, enqueuedAt: 0, deadline: nil)
        l.requeue(resumed, now: 2)
        #expect(l.expired(now: 1000).map(\.seq) == [10])
    }

    @Test func timeoutsAreReportedAtTheirDeadline() {
        var l = lot()
        _ = l.offer(entry(1, .normal, at: 0, timeout: 5), now: 0)
        _ = l.offer(entry(2, .normal, at: 0, timeout: 30), now: 0)
        #expect(l.expired(now: 4.9).isEmpty)
        #expect(l.expired(now: 5).map(\.seq) == [1])
    }

    @Test func fifoIgnoresPriorityAndNeverOvertakesOrEvicts() {
        var l = lot(.fifo, maxQueue: 3)
        _ = l.offer(entry(1, .low, cost: 5), now: 0)
        _ = l.offer(entry(2, .critical, cost: 1), now: 0)
        _ = l.offer(entry(3, .high, cost: 1), now: 0)
        #expect(l.offer(entry(4, .critical), now: 0) == .full)
        #expect(l.admit(freeBlocks: 4, freeSlots: 8, now: 0).isEmpty)  // head does not fit: nobody passes
        #expect(l.admit(freeBlocks: 7, freeSlots: 8, now: 0).map(\.seq) == [1, 2, 3])
        #expect(l.preemptionCandidate(now: 100, preemptAfter: 0) == nil)
    }

    @Test func preemptionCandidateIsAHighWaiterPastTheThreshold() {
        var l = lot()
        _ = l.offer(entry(1, .normal, at: 0), now: 0)
        _ = l.offer(entry(2, .high, at: 1), now: 1)
        #expect(l.preemptionCandidate(now: 2.5, preemptAfter: 2) == nil)
        #expect(l.preemptionCandidate(now: 3.5, preemptAfter: 2)?.seq == 2)
    }

    @Test func aSuspendedJobNeedsOnlyARowAndPassingABlockedHeadIsNoOvertake() {
        var l = lot(maxQueue: 1, overtakes: 0)
        _ = l.offer(entry(1, .normal, cost: 10), now: 0)
        l.suspend(seq: 2, priority: .normal, enqueuedAt: 0, now: 1)
        #expect(l.count == 2)
        #expect(l.ordered(now: 1).map(\.seq) == [2, 1])  // head of its class
        #expect(l.expired(now: 1000).map(\.seq) == [1])  // never times out
        #expect(l.preemptionCandidate(now: 100, preemptAfter: 0) == nil)
        // no free blocks at all, and the blocked head may not be passed: the suspended job still gets its row
        #expect(l.admit(freeBlocks: 0, freeSlots: 2, now: 1).map(\.seq) == [2])
        #expect(l.entries.first?.overtaken == 0)
    }

    @Test func aRowIsTakenOnlyForTheFirstHighWaiterAndOnlyIfItFits() {
        var l = lot()
        _ = l.offer(entry(1, .normal, cost: 1), now: 0)
        #expect(l.rowCandidate(freeBlocks: 8, now: 0) == nil)
        _ = l.offer(entry(2, .high, cost: 4), now: 0)
        _ = l.offer(entry(3, .critical, cost: 2), now: 0)
        #expect(l.rowCandidate(freeBlocks: 8, now: 0)?.seq == 3)
        #expect(l.rowCandidate(freeBlocks: 1, now: 0) == nil)  // the first one does not fit: preemption's case
        var f = lot(.fifo)
        _ = f.offer(entry(1, .critical), now: 0)
        #expect(f.rowCandidate(freeBlocks: 8, now: 0) == nil)
    }

    @Test func retryAfterFollowsTheDrainRate() {
        var d = DrainRate()
        #expect(d.retryAfter(ahead: 10, now: 0) == 1)
        for t in 0...4 { d.recordAdmission(at: Double(t)) }  // one per second
        #expect(d.retryAfter(ahead: 4, now: 4) == 5)
        #expect(d.retryAfter(ahead: 0, now: 4) == 1)
        #expect(d.retryAfter(ahead: 1000, now: 4) == 60)
    }

    @Test func blockManagerHandsOutDistinctBlocksAndTakesThemBackOnce() {
        var a = KVBlockManager(total: 10, caching: false)
        let none = KVBlockManager.Match()
        let x = a.allocate(blocks: 4, match: none)!, y = a.allocate(blocks: 6, match: none)!
        #expect(Set(x).isDisjoint(with: y))
        #expect(a.allocate(blocks: 1, match: none) == nil)
        a.release(x)
        a.release(x)
        #expect(a.doubleReleases == 4)
        #expect(a.available == 4)
        a.release(y)
        #expect(a.available == 10)
        #expect(a.violations().isEmpty)
    }
}
