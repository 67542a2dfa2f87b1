// Every `valet serve` setting after merging flags, VALET_* environment variables and defaults.
// Scheduler and HTTP settings are those libraries' own config types, so their defaults are written once, there.
import HTTPServer
import Scheduling
import Foundation
import Inference

public struct ServeConfig: Sendable {
    // Model and API
    public var model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var servedModelName = ""
    public var apiKey: String?
    public var defaultMaxTokens = 512
    public var shutdownGrace = 10.0
    /// Sampling defaults set with flags; each one left nil falls to the model's, then llama.cpp's.
    public var sampling = SamplingDefaults.Overrides()
    /// How /v1/embeddings pools the prompt's hidden states.
    public var pooling = Pooling.mean
    // Engine
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The engine's KV pool is allocated before the scheduler exists, so its size is the process's setting, not the
    /// scheduler's.
    public var kvCacheTokens = 16_384
    /// When set, sizes the KV cache in MiB instead of tokens.
    public var kvCacheMiB: Int?
    // The libraries' own settings
    public var scheduler = SchedulerConfig()
    public var http = HTTPServerConfiguration()
    /// When set, a second listener on the same host serves only /health and /metrics, so probes and scrapes get
    /// through while the API's connections are all taken.
    public var probePort: UInt16?
    // Recorder
    /// false (`--no-recorder`): no SQLite file is opened and nothing is written; /metrics still serves live figures.
    public var recorderEnabled = true
    public var db = "data/valet.sqlite"
    public var retentionSeconds = 7 * 86_400.0
    public var sampleInterval = 1.0
    // Operations
    public var logLevel = LogLevel.info
    public var logFormat = LogFormat.text
    /// Origins browsers may call the API from (`*` for any); empty sends no CORS headers at all.
    public var allowedOrigins: [String] = []

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
    private static let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]

    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            if let value = Double(t.dropLast(suffix.count)), value >= 0, value.isFinite { return value * scale }
        }
        if let value = Double(t), value >= 0, value.isFinite { return value }
        return nil
    }

    /// Help prints defaults in the form a user would type back: 604800 → `7d`, 30 → `30s`, 0.5 → `500ms`.
    /// Weeks are left out because `7d` reads more plainly than `1w`.
    public static func text(_ seconds: Double) -> String {
        for (suffix, scale) in [("d", 86_400.0), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001)] {
            let count = seconds / scale
            if count >= 1, count == count.rounded() { return "\(Int(count))\(suffix)" }
        }
        return "\(seconds)s"
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

    /// A setting where empty cannot mean anything safe (a key, a name): given empty, as flag or as variable, it is
    /// an error; not given at all, it is nil.
    func nonEmpty(_ cli: String?, _ option: String, _ what: String) throws -> String? {
        let name = SettingResolver.envName(option)
        let (text, source): (String, String)
        if let cli {
            (text, source) = (cli, "--\(option)")
        } else if let value = environment[name] {
            (text, source) = (value, name)
        } else {
            return nil
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigError(description: "\(source) is empty; \(what)")
        }
        return text
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

    func number(_ cli: String?, _ option: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let (text, source) = raw(cli, option) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, range.contains(value) else {
            throw ConfigError(description: "\(source): '\(text)' is not a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func seconds(_ cli: String?, _ option: String, _ fallback: Double, minimum: Double = 0) throws -> Double {
        guard let (text, source) = raw(cli, option) else { return fallback }
        guard let value = DurationText.seconds(text), value >= minimum else {
            throw ConfigError(description: "\(source): '\(text)' is not a duration (e.g. 30, 500ms, 10s, 5m, 7d)")
        }
        return value
    }

    /// One of an enum's names. The flag arrives already parsed by argument-parser; the variable is read with the same
    /// `init(rawValue:)` argument-parser uses, so both accept exactly the same words.
    func choice<T: RawRepresentable & CaseIterable>(_ cli: T?, _ option: String, _ fallback: T) throws -> T
    where T.RawValue == String {
        if let cli { return cli }
        guard let (text, source) = raw(nil, option) else { return fallback }
        guard let value = T(rawValue: text.trimmingCharacters(in: .whitespaces)) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError(description: "\(source): '\(text)' is not one of \(names)")
        }
        return value
    }
}

/// Checks against the file system that `run` does just before starting, so a bad path is one line naming its flag
/// and nothing (no `data/` directory, no database) is created first.
extension ServeConfig {
    public func checkPaths(fileManager: FileManager = .default) throws {
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw ConfigError(description: "--model: no file at '\(model)' (run `make model` for the default one)")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(description: "--model: '\(model)' is a directory, not a GGUF file")
        }
        guard let handle = FileHandle(forReadingAtPath: model) else {
            throw ConfigError(description: "--model: '\(model)' cannot be read")
        }
        let magic = (try? handle.read(upToCount: 4)) ?? nil
        try? handle.close()
        guard magic == Data("GGUF".utf8) else {
            throw ConfigError(description: "--model: '\(model)' is not a GGUF file (it does not start with 'GGUF')")
        }
        guard recorderEnabled else { return }
        if fileManager.fileExists(atPath: db, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigError(description: "--db: '\(db)' is a directory; give the path of a database file")
        }
        // The nearest ancestor that exists must be a directory, or the database's directory cannot be made.
        var ancestor = URL(fileURLWithPath: db).deletingLastPathComponent()
        while !fileManager.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) {
            let up = ancestor.deletingLastPathComponent()
            if up.path == ancestor.path { return }
            ancestor = up
        }
        guard isDirectory.boolValue else {
            throw ConfigError(description: "--db: cannot create '\(db)': '\(ancestor.path)' is a file, not a directory")
        }
    }
}
