// The step planner alone (no engine, no loop): which rows decode, how the prefill budget is shared, who wants logits.
import Testing
@testable import Scheduling
import Inference

private func row(_ p: Priority = .normal, order: UInt64, cached: Int, total: Int, scoring: Bool = false,
                 generates: Bool = true, suspended: Bool = false) -> StepPlanner.Row {
    StepPlanner.Row(priority: p, order: order, suspended: suspended, cached: cached, total: total, scoring: scoring,
                    generates: generates)
}

private let parkingLot = SchedulerConfig(kind: .parkingLot).policy
private let fifo = SchedulerConfig(kind: .fifo).policy

@Suite struct StepPlannerTests {
    @Test func everyDecodeRowRunsAndPromptsShareTheChunk() {
        let planner = StepPlanner(prefillChunk: 10, policy: fifo)
        let plan = planner.plan([
            row(order: 0, cached: 20, total: 21),  // decoding
            row(order: 1, cached: 0, total: 8),  // prompt of 8: all of it
            row(order: 2, cached: 0, total: 30),  // gets what is left: 2
            row(order: 3, cached: 0, total: 5),  // budget gone: waits
            row(order: 4, cached: 9, total: 10, suspended: true),  // lent its row: skipped
        ])
        #expect(plan.items.map(\.row) == [0, 1, 2])
        #expect(plan.items.map(\.count) == [1, 8, 2])
        #expect(plan.items.map(\.start) == [20, 0, 0])
        #expect(plan.items.map(\.logits) == [.last, .last, .none])
    }

    @Test func scoringWantsEveryRowAndScoringOnlyJobsNoSample() {
        let plan = StepPlanner(prefillChunk: 64, policy: fifo).plan([
            row(order: 0, cached: 0, total: 12, scoring: true, generates: false),
            row(order: 1, cached: 0, total: 4, generates: false),
        ])
        #expect(plan.items.map(\.logits) == [.all, .none])
        #expect(plan.items.map(\.scoring) == [true, false])
    }

    @Test func priorityFirstPrefillsTheHighPromptAloneButKeepsDecoding() {
        let rows = [
            row(.normal, order: 0, cached: 0, total: 40),
            row(.low, order: 1, cached: 30, total: 31),
            row(.high, order: 2, cached: 0, total: 16),
        ]
        let plan = StepPlanner(prefillChunk: 64, policy: parkingLot).plan(rows)
        // The high prompt goes first and the normal prompt waits for it; the low decode row still runs.
        #expect(plan.items.map(\.row) == [2, 1])
        #expect(plan.items.map(\.count) == [16, 1])
        // FIFO keeps admission order and shares the chunk.
        let arrival = StepPlanner(prefillChunk: 64, policy: fifo).plan(rows)
        #expect(arrival.items.map(\.row) == [0, 1, 2])
        #expect(arrival.items.map(\.count) == [40, 1, 16])
    }

    @Test func victimsAreLowestClassThenNewest() {
        var set = RunningSet()
        for (i, p) in [Priority.normal, .low, .normal, .low, .high].enumerated() {
            set.add(SchedulerJob(seq: UInt64(i), request: request("j\(i)", priority: p), onEvent: { _ in },
                                 costBlocks: 1, maxTokens: 8, enqueuedMono: 0, enqueuedUnix: 0), blocks: [Int32(i)])
        }
        set[3].suspended = true
        #expect(set.victims(below: .critical) == [3, 1, 2, 0, 4])
        #expect(set.victims(below: .high, includingSuspended: false) == [1, 2, 0])
        #expect(set.activeRows == 4)
    }
}
