// What the engine loop asks of a constrained sequence at each decode step. Grammar constraints conform; so can
// wrappers (a lazy grammar that switches on at a marker, say).

/// A per-sequence constraint on decoding: a value the job carries (copied per choice, kept across preemption).
///
/// Each step the engine calls `allowedTokens(remaining:)` before sampling, masks the logits with the answer, samples,
/// then calls `accept(_:)` with the chosen token. When `isFinished` turns true the job ends with `stop` at once.
public protocol TokenConstraint: Sendable {
    /// Tokens allowed next; `remaining` counts the tokens still allowed by `max_tokens`, this one included.
    /// nil: no restriction at this step.
    mutating func allowedTokens(remaining: Int) -> TokenMask?
    /// Advances past a sampled token.
    mutating func accept(_ token: Int32)
    /// The constrained text is complete and nothing may follow it.
    var isFinished: Bool { get }
}
