// `valet serve`: parse the configuration, start HTTP, load the model, serve until SIGINT/SIGTERM.
// Every help line names its variable and prints the default of the type that owns the setting, so help cannot drift.
import ValetMetrics
import HTTPServer
import Scheduling
import ArgumentParser
import Foundation
import Inference

// argument-parser then rejects an unknown --scheduler itself and lists the valid names in the message.
extension SchedulerConfig.Kind: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}
extension LogLevel: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

/// An on/off setting given as a word (`--prefix-cache off`), so the default can be turned off from the command line.
enum OnOff: String, CaseIterable, ExpressibleByArgument {
    case on, off
    init(_ value: Bool) { self = value ? .on : .off }
    var isOn: Bool { self == .on }
}

// The default instances help reads from; resolve() starts from the same values.
private let serve = ServeConfig()
private let scheduling = SchedulerConfig()
private let http = HTTPServerConfiguration()

/// `option` must be the flag's name: the variable shown is derived from it the same way resolve() derives it.
/// A switch's `envValue` (`=1`) shows what the variable must say, since it has no value of its own to name.
private func help(_ text: String, _ option: String, envValue: String = "",
                  default value: some CustomStringConvertible) -> ArgumentHelp {
    ArgumentHelp("\(text) (env \(SettingResolver.envName(option))\(envValue); default \(value))")
}

private func duration(_ seconds: Double) -> String { DurationText.text(seconds) }

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a GGUF model over an OpenAI-compatible HTTP API.",
        discussion: """
        Every option can also be set with an environment variable VALET_<NAME> (the option name in capitals, \
        dashes as underscores, e.g. VALET_PORT=9000, VALET_API_KEY=secret); a flag wins over the variable. \
        Durations accept 500ms, 10s, 5m, 12h, 7d or plain seconds.
        """
    )

    // Model and API
    @Option(name: [.customShort("m"), .long], help: help("GGUF model file.", "model", default: serve.model))
    var model: String?
    @Option(parsing: .unconditional, help: help("Model id clients send and see.", "served-model-name", default: "the file name without .gguf"))
    var servedModelName: String?
    @Option(parsing: .unconditional, help: help("Require 'Authorization: Bearer KEY' on the API routes; /health and /metrics stay open. Unset is no auth; an empty key is an error.",
                       "api-key", default: serve.apiKey ?? "none"))
    var apiKey: String?
    @Option(parsing: .unconditional, help: help("Chat max_tokens when a request has none, capped by the context left.",
                       "default-max-tokens", default: serve.defaultMaxTokens))
    var defaultMaxTokens: String?

    // Sampling defaults: what a request that leaves the field out gets.
    private static let llama = SamplingDefaults.llamaCpp
    @Option(parsing: .unconditional, help: help("Default sampling temperature; 0 is greedy.", "temperature",
                       default: "the model's, else \(llama.temperature)"))
    var temperature: String?
    @Option(parsing: .unconditional, help: help("Default top-p (nucleus) cut-off; 1 disables it.", "top-p", default: "the model's, else \(llama.topP)"))
    var topP: String?
    @Option(parsing: .unconditional, help: help("Default top-k; 0 disables it.", "top-k", default: "the model's, else \(llama.topK)"))
    var topK: String?
    @Option(parsing: .unconditional, help: help("Default min-p, relative to the most likely token; 0 disables it.", "min-p",
                       default: "the model's, else \(llama.minP)"))
    var minP: String?
    @Option(parsing: .unconditional, help: help("Default repetition penalty over the last 64 tokens; 1 disables it.", "repeat-penalty",
                       default: "the model's, else \(llama.repetitionPenalty)"))
    var repeatPenalty: String?
    @Option(parsing: .unconditional, help: help("How /v1/embeddings pools the final hidden states: mean, last or cls.", "pooling",
                       default: serve.pooling.rawValue))
    var pooling: Pooling?

    // HTTP
    @Option(parsing: .unconditional, help: help("Address to listen on.", "host", default: http.host))
    var host: String?
    @Option(name: [.customShort("p"), .long], parsing: .unconditional, help: help("Port to listen on.", "port", default: http.port))
    var port: String?
    @Option(parsing: .unconditional, help: help("Largest request body in bytes; larger gets 413.", "max-body-bytes", default: http.maxBodyBytes))
    var maxBodyBytes: String?
    @Option(parsing: .unconditional, help: help("HTTP threads; streams never hold one while waiting.", "http-threads", default: http.threads))
    var httpThreads: String?
    @Option(parsing: .unconditional, help: help("Most open connections at once.", "max-connections", default: http.connectionLimit))
    var maxConnections: String?
    @Option(parsing: .unconditional, help: help("Most open connections from one client address; 0 is no limit (behind a proxy, raise it or use 0).",
                       "max-connections-per-ip", default: http.connectionsPerAddress))
    var maxConnectionsPerIp: String?
    @Option(parsing: .unconditional, help: help("Seconds an idle connection may stay open.", "connection-timeout",
                       default: http.connectionTimeout))
    var connectionTimeout: String?
    @Option(parsing: .unconditional, help: help("Seconds a client has to send a whole request (headers and body); dripping bytes does not extend it.",
                       "request-read-timeout", default: http.requestReadTimeout))
    var requestReadTimeout: String?
    @Option(parsing: .unconditional, help: help("Request-body bytes all uploads together may buffer; beyond it an upload gets 503.",
                       "max-buffered-body-bytes", default: http.maxBufferedBodyBytes))
    var maxBufferedBodyBytes: String?
    @Option(parsing: .unconditional, help: help("Also serve /health and /metrics on this port, a listener of their own that API traffic cannot fill.",
                       "probe-port", default: "unset"))
    var probePort: String?
    @Option(parsing: .unconditional, help: help("Largest request line + headers in bytes; larger gets 431.", "max-header-bytes",
                       default: http.maxHeaderBytes))
    var maxHeaderBytes: String?
    @Option(parsing: .unconditional, help: help("On SIGINT/SIGTERM, how long running streams may finish before they are cancelled.",
                       "shutdown-grace", default: duration(serve.shutdownGrace)))
    var shutdownGrace: String?

    // Engine
    @Option(name: [.customShort("t"), .long], parsing: .unconditional,
            help: help("Engine compute threads.", "threads", default: "the number of CPUs"))
    var threads: String?

    // Scheduler
    @Option(parsing: .unconditional, help: help("KV-cache capacity in tokens (16-token blocks), shared by all running requests.",
                       "kv-cache-tokens", default: serve.kvCacheTokens))
    var kvCacheTokens: String?
    @Option(parsing: .unconditional, help: help("KV-cache capacity in MiB instead of tokens.", "kv-cache-mib",
                       default: serve.kvCacheMiB.map(String.init) ?? "unset"))
    var kvCacheMib: String?
    @Option(name: [.customShort("c"), .long], parsing: .unconditional,
            help: help("Longest prompt + completion of one request; 0 uses the model's.", "ctx-size",
                       default: scheduling.ctxSize ?? 0))
    var ctxSize: String?
    @Option(parsing: .unconditional, help: help("Most sequences decoded in one engine step.", "max-batch", default: scheduling.maxBatch))
    var maxBatch: String?
    @Option(parsing: .unconditional, help: help("Most prompt tokens prefilled per step, so long prompts don't stall streams.", "prefill-chunk",
                       default: scheduling.prefillChunk))
    var prefillChunk: String?
    @Option(parsing: .unconditional, help: help("Most requests waiting in the lot; beyond it arrivals get 429.", "max-queue",
                       default: scheduling.maxQueue))
    var maxQueue: String?
    @Option(parsing: .unconditional, help: help("How long a request may wait for capacity before a 503 queue_timeout; requests may lower or raise it with queue_timeout.",
                       "queue-timeout", default: duration(scheduling.queueTimeout)))
    var queueTimeout: String?
    @Option(parsing: .unconditional, help: help("A high/critical request waiting this long preempts lower-priority running work.",
                       "preempt-after", default: duration(scheduling.preemptAfter)))
    var preemptAfter: String?
    @Option(parsing: .unconditional, help: help("A waiting request rises one priority class after this long.", "aging-seconds",
                       default: duration(scheduling.agingSeconds)))
    var agingSeconds: String?
    @Option(parsing: .unconditional, help: help("How many times smaller requests may pass a waiting head that doesn't fit.", "max-overtakes",
                       default: scheduling.maxOvertakes))
    var maxOvertakes: String?
    @Option(parsing: .unconditional, help: help("Admission policy: parking-lot (priorities, overtaking, preemption) or fifo.", "scheduler",
                       default: scheduling.kind.rawValue))
    var scheduler: SchedulerConfig.Kind?
    @Option(parsing: .unconditional, help: help("Keep full KV blocks cached by content after their request, so later prompts with the same prefix skip recomputing it (on or off).",
                       "prefix-cache", default: OnOff(scheduling.prefixCache).rawValue))
    var prefixCache: OnOff?

    // Recorder
    @Flag(help: help("Keep no job record: no SQLite file is opened or written; /metrics still serves live figures, /v1/metrics live stats only, /v1/jobs/{id} an error.",
                     "no-recorder", envValue: "=1", default: serve.recorderEnabled ? "off" : "on"))
    var noRecorder = false
    @Option(parsing: .unconditional, help: help("SQLite database recording every job and queue samples.", "db", default: serve.db))
    var db: String?
    @Option(parsing: .unconditional, help: help("How long recorded rows are kept.", "retention", default: duration(serve.retentionSeconds)))
    var retention: String?
    @Option(parsing: .unconditional, help: help("How often queue depth is sampled.", "sample-interval", default: duration(serve.sampleInterval)))
    var sampleInterval: String?

    // Operations
    @Option(parsing: .unconditional, help: help("Least severe log lines written: trace, debug, info, warning or error. info includes one access-log line per request.",
                       "log-level", default: serve.logLevel.rawValue))
    var logLevel: LogLevel?
    @Option(parsing: .unconditional, help: help("Log lines as text (time level message key=value) or json (one object per line).",
                       "log-format", default: serve.logFormat.rawValue))
    var logFormat: LogFormat?
    @Option(parsing: .unconditional, help: help("Comma-separated origins browsers may call the API from (CORS), or * for any.",
                       "allowed-origins", default: "none (no CORS headers)"))
    var allowedOrigins: String?

    func resolve(environment: [String: String]) throws -> ServeConfig {
        let r = SettingResolver(environment: environment)
        var c = ServeConfig()
        c.model = r.string(model, "model", c.model)
        c.servedModelName = try r.nonEmpty(servedModelName, "served-model-name",
                                           "leave it out to use the model file's name")
            ?? ServeConfig.defaultServedName(forModel: c.model)
        // Empty is an error whichever way it comes: as a flag it would lock everyone out, as a variable turn auth
        // off, and neither is what someone who set it meant.
        c.apiKey = try r.nonEmpty(apiKey, "api-key", "leave it unset to serve without auth, or give a key")
        c.defaultMaxTokens = try r.int(defaultMaxTokens, "default-max-tokens", c.defaultMaxTokens, 1...1_000_000)
        c.shutdownGrace = try r.seconds(shutdownGrace, "shutdown-grace", c.shutdownGrace)
        // The same ranges the API accepts for the request fields.
        var sampling = SamplingDefaults.Overrides()
        sampling.temperature = try r.number(temperature, "temperature", 0...2).map(Float.init)
        sampling.topP = try r.number(topP, "top-p", 0.000_001...1).map(Float.init)
        sampling.topK = try r.raw(topK, "top-k").map { _ in try r.int(topK, "top-k", 0, 0...Int(Int32.max)) }
        sampling.minP = try r.number(minP, "min-p", 0...1).map(Float.init)
        sampling.repetitionPenalty = try r.number(repeatPenalty, "repeat-penalty", 0.000_001...2).map(Float.init)
        c.sampling = sampling
        c.pooling = try r.choice(pooling, "pooling", c.pooling)
        c.threads = try r.int(threads, "threads", c.threads, 1...1024)
        c.kvCacheTokens = try r.int(kvCacheTokens, "kv-cache-tokens", c.kvCacheTokens, 16...(1 << 26))
        if let (_, tokens) = r.raw(kvCacheTokens, "kv-cache-tokens"), let (_, mib) = r.raw(kvCacheMib, "kv-cache-mib") {
            throw ConfigError(description: "\(tokens) and \(mib) both size the KV cache; give only one")
        }
        if r.raw(kvCacheMib, "kv-cache-mib") != nil {
            c.kvCacheMiB = try r.int(kvCacheMib, "kv-cache-mib", 0, 1...(1 << 20))
        }

        var h = c.http
        h.host = r.string(host, "host", h.host)
        h.port = UInt16(try r.int(port, "port", Int(h.port), 0...65_535))
        h.maxBodyBytes = try r.int(maxBodyBytes, "max-body-bytes", h.maxBodyBytes, 1...(1 << 30))
        h.threads = try r.int(httpThreads, "http-threads", h.threads, 1...64)
        h.connectionLimit = try r.int(maxConnections, "max-connections", h.connectionLimit, 1...1_000_000)
        h.connectionsPerAddress = try r.int(maxConnectionsPerIp, "max-connections-per-ip", h.connectionsPerAddress,
                                            0...1_000_000)
        h.connectionTimeout = try r.int(connectionTimeout, "connection-timeout", h.connectionTimeout, 1...86_400)
        h.requestReadTimeout = try r.int(requestReadTimeout, "request-read-timeout", h.requestReadTimeout, 1...86_400)
        h.maxBufferedBodyBytes = try r.int(maxBufferedBodyBytes, "max-buffered-body-bytes", h.maxBufferedBodyBytes,
                                           1...(1 << 40))
        h.maxHeaderBytes = try r.int(maxHeaderBytes, "max-header-bytes", h.maxHeaderBytes, 4096...(16 << 20))
        c.http = h
        if r.raw(probePort, "probe-port") != nil {
            c.probePort = UInt16(try r.int(probePort, "probe-port", 0, 0...65_535))
        }

        var s = c.scheduler
        // The flag's 0 means "the model's", which SchedulerConfig spells nil.
        let ctx = try r.int(ctxSize, "ctx-size", s.ctxSize ?? 0, 0...(1 << 24))
        s.ctxSize = ctx == 0 ? nil : ctx
        s.maxBatch = try r.int(maxBatch, "max-batch", s.maxBatch, 1...4096)
        s.prefillChunk = try r.int(prefillChunk, "prefill-chunk", s.prefillChunk, 1...(1 << 20))
        s.maxQueue = try r.int(maxQueue, "max-queue", s.maxQueue, 0...1_000_000)
        s.queueTimeout = try r.seconds(queueTimeout, "queue-timeout", s.queueTimeout)
        s.preemptAfter = try r.seconds(preemptAfter, "preempt-after", s.preemptAfter)
        s.agingSeconds = try r.seconds(agingSeconds, "aging-seconds", s.agingSeconds)
        s.maxOvertakes = try r.int(maxOvertakes, "max-overtakes", s.maxOvertakes, 0...1_000_000)
        s.kind = try r.choice(scheduler, "scheduler", s.kind)
        s.prefixCache = try r.choice(prefixCache, "prefix-cache", OnOff(s.prefixCache)).isOn
        c.scheduler = s

        c.recorderEnabled = try !r.bool(noRecorder, "no-recorder")
        c.db = r.string(db, "db", c.db)
        c.retentionSeconds = try r.seconds(retention, "retention", c.retentionSeconds)
        c.sampleInterval = try r.seconds(sampleInterval, "sample-interval", c.sampleInterval, minimum: 0.01)

        c.logLevel = try r.choice(logLevel, "log-level", c.logLevel)
        c.logFormat = try r.choice(logFormat, "log-format", c.logFormat)
        if let (text, source) = r.raw(allowedOrigins, "allowed-origins") {
            let origins = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for origin in origins where origin != "*" && !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
                throw ConfigError(description: "\(source): '\(origin)' is not an origin (scheme://host[:port]) or *")
            }
            c.allowedOrigins = origins
        }
        return c
    }

    func run() throws {
        let config: ServeConfig
        do {
            config = try resolve(environment: ProcessInfo.processInfo.environment)
            try config.checkPaths()
        } catch let error as ConfigError {
            // One line naming the setting, not the usage text: the flag was spelled right, its value was not.
            throw CLIError(error.description)
        }
        Log.configure(level: config.logLevel, format: config.logFormat)
        let code = Server(config: config).run()
        if code != 0 { throw ExitCode(code) }
    }
}
