// The `prefix_cache` object of `GET /v1/metrics`: whether the cache is on, what it holds, and how often it hits.

public struct PrefixCacheReport: Encodable, Sendable, Equatable {
    public var enabled: Bool
    /// Cached blocks no running job references (evictable; also part of `available_capacity`).
    public var cachedBlocks: Int
    /// Prompt tokens looked up at first admission since start, and those found cached.
    public var queryTokens: Int
    public var hitTokens: Int
    /// hit_tokens / query_tokens; 0 before any query.
    public var hitRatio: Double { queryTokens > 0 ? Double(hitTokens) / Double(queryTokens) : 0 }
    public var evictions: Int

    public init(enabled: Bool, cachedBlocks: Int = 0, queryTokens: Int = 0, hitTokens: Int = 0, evictions: Int = 0) {
        self.enabled = enabled
        self.cachedBlocks = cachedBlocks
        self.queryTokens = queryTokens
        self.hitTokens = hitTokens
        self.evictions = evictions
    }

    enum CodingKeys: String, CodingKey {
        case enabled
        case cachedBlocks = "cached_blocks"
        case queryTokens = "query_tokens"
        case hitTokens = "hit_tokens"
        case hitRatio = "hit_ratio"
        case evictions
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(enabled, forKey: .enabled)
        try c.encode(cachedBlocks, forKey: .cachedBlocks)
        try c.encode(queryTokens, forKey: .queryTokens)
        try c.encode(hitTokens, forKey: .hitTokens)
        try c.encode(hitRatio, forKey: .hitRatio)
        try c.encode(evictions, forKey: .evictions)
    }
}
