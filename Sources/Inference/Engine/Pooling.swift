// How an embedding is made from a prompt's final normalized hidden states: which positions are pooled, then
// L2-normalized so a dot product is the cosine similarity.

public enum Pooling: String, Sendable, CaseIterable {
    /// The average over every position: the usual choice for a decoder model not trained for embeddings.
    case mean
    /// The last position, which has attended to the whole prompt.
    case last
    /// The first position (BERT's [CLS] slot); in a causal model it sees only the first token.
    case cls
}

/// Accumulates one sequence's hidden-state rows as they arrive (in any number of prefill steps) and yields the
/// pooled, normalized vector. Only the running sum (or one row) is kept, never every row.
public struct PooledEmbedding: Sendable, Equatable {
    public let pooling: Pooling
    /// Positions in the sequence; the last one is known up front so `last` keeps one row.
    public let length: Int
    /// Sized by the first row, so the pool needs no model facts up front.
    private var sum: [Double] = []
    private var rows = 0

    public init(pooling: Pooling, length: Int) {
        self.pooling = pooling
        self.length = length
    }

    /// The final normalized hidden state at `position` (0-based in the sequence).
    public mutating func add(_ row: UnsafeBufferPointer<Float>, position: Int) {
        if sum.isEmpty { sum = [Double](repeating: 0, count: row.count) }
        let n = Swift.min(row.count, sum.count)
        switch pooling {
        case .mean:
            for i in 0..<n { sum[i] += Double(row[i]) }
            rows += 1
        case .last where position == length - 1, .cls where position == 0:
            for i in 0..<n { sum[i] = Double(row[i]) }
            rows = 1
        case .last, .cls:
            break
        }
    }

    /// Whether every position the pooling needs has arrived.
    public var isComplete: Bool {
        switch pooling {
        case .mean: rows == length
        case .last, .cls: rows == 1
        }
    }

    /// The pooled vector with unit L2 norm (all zeros stays zeros).
    public var vector: [Float] {
        let scale = pooling == .mean ? 1 / Double(Swift.max(rows, 1)) : 1
        let pooled = sum.map { $0 * scale }
        let norm = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return pooled.map { Float(norm > 0 ? $0 / norm : 0) }
    }
}
