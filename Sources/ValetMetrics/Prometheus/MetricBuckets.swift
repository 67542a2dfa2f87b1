// Histogram bucket bounds, chosen for a CPU server: latency from 1 ms, token counts on a 1-2-5 series.

enum MetricBuckets {
    /// Time to first token: fine steps below a second, where a CPU server's prompt-cache hits and short prompts land.
    static let timeToFirstToken: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
        1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120,
    ]
    /// Gap between consecutive tokens of one request (a step of the batched engine).
    static let interTokenLatency: [Double] = [
        0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
        0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5,
    ]
    /// Whole-request and phase durations (end to end, queue, prefill, decode).
    static let requestDuration: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60,
        90, 120, 180, 300, 600,
    ]
    /// HTTP handling time (streaming responses included, so the top reaches minutes).
    static let httpDuration: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
    ]
    /// Compiling a constraint: from 100 µs (a small schema) to seconds (a pathological one).
    static let grammarCompile: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
    ]

    /// 1, 2, 5, 10, 20, 50, … up to `limit`, with `limit` itself as the last bound.
    static func tokenCounts(upTo limit: Int) -> [Double] {
        let top = max(limit, 1)
        var bounds: [Double] = []
        var scale = 1
        outer: while true {
            for step in [1, 2, 5] {
                let value = step * scale
                if value >= top { break outer }
                bounds.append(Double(value))
            }
            scale *= 10
        }
        bounds.append(Double(top))
        return bounds
    }
}
