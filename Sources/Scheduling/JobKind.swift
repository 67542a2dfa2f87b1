// Which endpoint a job serves: recorded in the `jobs` table so operators can tell embedding load from chat.

public enum JobKind: String, Sendable, CaseIterable {
    case completion
    case chat
    /// Prefill only; the prompt's pooled hidden states are the answer.
    case embedding
    /// The Responses API (a chat under the hood).
    case response
}
