// The prefix cache's running totals as counters. The scheduler reports totals, not events, so each report adds what
// grew since the last one; reports may arrive out of order from several threads, so an older one adds nothing.
import Prometheus
import Locks

final class PrefixCacheCounters: Sendable {
    struct Totals: Sendable, Equatable {
        var queryTokens = 0
        var hitTokens = 0
        var evictions = 0
    }

    private let queries: Counter
    private let hits: Counter
    private let evictions: Counter
    private let reported = Locked(Totals())

    init(in registry: PrometheusCollectorRegistry) {
        queries = registry.counter(.prefixCacheQueries)
        hits = registry.counter(.prefixCacheHits)
        evictions = registry.counter(.prefixCacheEvictions)
    }

    func advance(to totals: Totals) {
        let delta = reported.withLock { last -> Totals in
            let d = Totals(queryTokens: Swift.max(0, totals.queryTokens - last.queryTokens),
                           hitTokens: Swift.max(0, totals.hitTokens - last.hitTokens),
                           evictions: Swift.max(0, totals.evictions - last.evictions))
            last = Totals(queryTokens: Swift.max(last.queryTokens, totals.queryTokens),
                          hitTokens: Swift.max(last.hitTokens, totals.hitTokens),
                          evictions: Swift.max(last.evictions, totals.evictions))
            return d
        }
        if delta.queryTokens > 0 { queries.increment(by: Int64(delta.queryTokens)) }
        if delta.hitTokens > 0 { hits.increment(by: Int64(delta.hitTokens)) }
        if delta.evictions > 0 { evictions.increment(by: Int64(delta.evictions)) }
    }
}
