// The pure half of an engine step: from the running sequences and the policy, which rows decode, which prompts
// prefill how much, and which want logits back. No engine, no locks; tests call it directly.
import Inference

/// One sequence's part of a step: tokens `start..<start+count` of its history, fed at position `start`.
struct StepPlanItem: Sendable, Equatable {
    /// Index in the running set.
    var row: Int
    var start: Int
    var count: Int
    var logits: LogitRows
    /// This step scores the prompt (a logits row after every token).
    var scoring: Bool
}

struct StepPlan: Sendable, Equatable {
    var items: [StepPlanItem] = []
    var isEmpty: Bool { items.isEmpty }
}

struct StepPlanner: Sendable {
    /// What the planner needs to know of one running sequence.
    struct Row: Sendable {
        var priority: Priority
        /// Admission order (lower: earlier).
        var order: UInt64
        var suspended: Bool
        /// Tokens already in the cache, and the whole history (prompt plus generated).
        var cached: Int
        var total: Int
        /// Prompt logprobs wanted and not yet sent.
        var scoring: Bool
        /// max_tokens > 0: the row after the last token is sampled.
        var generates: Bool
        /// An embedding job: every prompt position's hidden state is wanted, never logits.
        var embeds = false
    }

    /// Prompt tokens per step, shared by all prefilling sequences.
    var prefillChunk: Int
    var priorityFirst: Bool

    init(prefillChunk: Int, policy: any AdmissionPolicy) {
        self.prefillChunk = prefillChunk
        priorityFirst = policy.servesPriorityFirst
    }

    /// Every decode row runs (one token each); the prefill budget goes to prompts in order. With priority first,
    /// the highest class prefills first, and while a high or critical prompt prefills, lower classes' prompts wait:
    /// the step ends, and its first token streams, sooner.
    func plan(_ rows: [Row]) -> StepPlan {
        var order = rows.indices.filter { !rows[$0].suspended }
        if priorityFirst {
            order.sort { a, b in
                rows[a].priority != rows[b].priority ? rows[a].priority > rows[b].priority : rows[a].order < rows[b].order
            }
        }
        var budget = prefillChunk
        var prefillClass: Priority?
        var plan = StepPlan()
        for i in order {
            let row = rows[i]
            let remaining = row.total - row.cached
            guard remaining > 0 else { continue }
            var n = 1
            if remaining > 1 {
                guard budget > 0 else { continue }
                if priorityFirst, let c = prefillClass, c >= .high, row.priority < c { continue }
                prefillClass = prefillClass ?? row.priority
                n = Swift.min(remaining, budget)
                budget -= n
            }
            let reachesEnd = row.cached + n == row.total
            let logits: LogitRows = row.embeds ? .hiddenStates
                : row.scoring ? .all : (reachesEnd && row.generates ? .last : .none)
            plan.items.append(StepPlanItem(row: i, start: row.cached, count: n, logits: logits, scoring: row.scoring))
        }
        return plan
    }
}
