// Tuning for the recorder: flush cadence, buffer bounds and retention (`--recorder-flush-ms`, `--retention`).

public struct RecorderOptions: Sendable {
    /// Longest a recorded row stays only in memory, in seconds (at most 1). `--recorder-flush-ms`, default 250 ms.
    public var flushInterval: Double
    /// Rows older than this many seconds are pruned in the background; nil keeps everything. `--retention`, default 7 days.
    public var retention: Double?
    /// How often the writer looks for rows to prune, in seconds.
    public var pruneInterval: Double
    /// Buffered job rows that wake the writer before its tick.
    public var batchSize: Int
    /// Queue and lock-wait samples held in memory at most; beyond it samples are dropped and counted.
    public var sampleCapacity: Int

    public init(
        flushInterval: Double = 0.25,
        retention: Double? = 7 * 86_400,
        pruneInterval: Double = 60,
        batchSize: Int = 2_048,
        sampleCapacity: Int = 8_192
    ) {
        self.flushInterval = min(max(flushInterval, 0.001), 1)
        self.retention = retention.flatMap { $0 > 0 ? $0 : nil }
        self.pruneInterval = max(pruneInterval, 0)
        self.batchSize = max(batchSize, 1)
        self.sampleCapacity = max(sampleCapacity, 1)
    }
}

extension RecorderOptions {
    /// Parses a duration flag such as `7d`, `12h`, `30m`, `90s`, `250ms` or a bare number of seconds.
    /// `0`, `off` and `forever` give 0 (meaning: keep everything). Returns nil for anything else.
    public static func parseDuration(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: " ").lowercased()
        if trimmed == "off" || trimmed == "forever" { return 0 }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400), ("w", 604_800)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if let value = Double(number), value >= 0, value.isFinite { return value * scale }
        }
        if let value = Double(trimmed), value >= 0, value.isFinite { return value }
        return nil
    }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}
