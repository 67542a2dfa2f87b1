// Every `valet serve` setting after merging flags, VALET_* environment variables and defaults.
import ValetMetrics
import Scheduling
import Foundation

public struct ServeConfig: Sendable, Equatable {
    // Model and API
    public var model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var servedModelName = ""
    public var apiKey: String?
    public var defaultMaxTokens = 512
    // HTTP
    public var host = "127.0.0.1"
    public var port = 8080
    public var maxBodyBytes = 1 << 20
    public var httpThreads = 2
    public var maxConnections = 1024
    public var connectionTimeout = 60
    public var maxHeaderBytes = 32 * 1024
    public var shutdownGrace = 10.0
    // Engine
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    // Scheduler
    public var kvCacheTokens = 16_384
    /// When set, sizes the KV cache in MiB instead of tokens.
    public var kvCacheMiB: Int?
    /// 0: the model's trained context length.
    public var ctxSize = 0
    public var maxBatch = 8
    public var prefillChunk = 256
    public var maxQueue = 64
    public var queueTimeout = 30.0
    public var preemptAfter = 2.0
    public var agingSeconds = 10.0
    public var maxOvertakes = 4
    public var scheduler = "parking-lot"
    // Recorder
    /// false (`--no-recorder`): no SQLite file is opened and nothing is written; /metrics still serves live figures.
    public var recorderEnabled = true
    public var db = "data/valet.sqlite"
    public var retentionSeconds = 7 * 86_400.0
    public var sampleInterval = 1.0

    public init() {}

    /// The model file's name without `.gguf`.
    public static func defaultServedName(forModel path: String) -> String {
        let file = URL(fileURLWithPath: path).lastPathComponent
        return file.lowercased().hasSuffix(".gguf") ? String(file.dropLast(5)) : file
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Parses the human forms used for durations: `7d`, `12h`, `30m`, `10s`, `500ms`, or plain seconds.
public enum DurationText {
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            if let value = Double(t.dropLast(suffix.count)), value >= 0, value.isFinite { return value * scale }
        }
        if let value = Double(t), value >= 0, value.isFinite { return value }
        return nil
    }
}

/// Looks a setting up as flag, then `VALET_<NAME>`, then default, and checks it.
struct SettingResolver {
    var environment: [String: String]

    static func envName(_ option: String) -> String {
        "VALET_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    func raw(_ cli: String?, _ option: String) -> (String, String)? {
        if let cli { return (cli, "--\(option)") }
        let name = SettingResolver.envName(option)
        if let value = environment[name], !value.isEmpty { return (value, name) }
        return nil
    }

    func string(_ cli: String?, _ option: String, _ fallback: String) -> String {
        raw(cli, option)?.0 ?? fallback
    }

    func int(_ cli: String?, _ option: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
        guard let (text, source) = raw(cli, option) else { return fallback }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigError(description: "\(source): '\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A switch: the flag turns it on; otherwise `VALET_<NAME>` may say 1/true/yes/on or 0/false/no/off.
    func bool(_ cli: Bool, _ option: String) throws -> Bool {
        if cli { return true }
        guard let (text, source) = raw(nil, option) else { return false }
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigError(description: "\(source): '\(text)' is not a switch (1, true, yes, on or 0, false, no, off)")
        }
    }

    func seconds(_ cli: String?, _ option: String, _ fallback: Double, minimum: Double = 0) throws -> Double {
        guard let (text, source) = raw(cli, option) else { return fallback }
        guard let value = DurationText.seconds(text), value >= minimum else {
            throw ConfigError(description: "\(source): '\(text)' is not a duration (e.g. 30, 500ms, 10s, 5m, 7d)")
        }
        return value
    }
}
