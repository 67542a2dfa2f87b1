// `valet serve`: parse the configuration, start HTTP, load the model, serve until SIGINT/SIGTERM.
import ValetMetrics
import Scheduling
import ArgumentParser
import Foundation

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
    @Option(help: "GGUF model file. (env VALET_MODEL; default models/SmolLM2-135M-Instruct.Q4_1.gguf)")
    var model: String?
    @Option(help: "Model id clients send and see. (env VALET_SERVED_MODEL_NAME; default the file name without .gguf)")
    var servedModelName: String?
    @Option(help: "Require 'Authorization: Bearer KEY' on the API routes; /health and /metrics stay open. (env VALET_API_KEY; default none)")
    var apiKey: String?
    @Option(help: "Chat max_tokens when a request has none, capped by the context left. (env VALET_DEFAULT_MAX_TOKENS; default 512)")
    var defaultMaxTokens: String?

    // HTTP
    @Option(help: "Address to listen on. (env VALET_HOST; default 127.0.0.1)")
    var host: String?
    @Option(help: "Port to listen on. (env VALET_PORT; default 8080)")
    var port: String?
    @Option(help: "Largest request body in bytes; larger gets 413. (env VALET_MAX_BODY_BYTES; default 1048576)")
    var maxBodyBytes: String?
    @Option(help: "HTTP threads; streams never hold one while waiting. (env VALET_HTTP_THREADS; default 2)")
    var httpThreads: String?
    @Option(help: "Most open connections at once. (env VALET_MAX_CONNECTIONS; default 1024)")
    var maxConnections: String?
    @Option(help: "Seconds an idle or slow connection may stay open. (env VALET_CONNECTION_TIMEOUT; default 60)")
    var connectionTimeout: String?
    @Option(help: "Largest request line + headers in bytes; larger gets 431. (env VALET_MAX_HEADER_BYTES; default 32768)")
    var maxHeaderBytes: String?
    @Option(help: "On SIGINT/SIGTERM, how long running streams may finish before they are cancelled. (env VALET_SHUTDOWN_GRACE; default 10s)")
    var shutdownGrace: String?

    // Engine
    @Option(help: "Engine compute threads. (env VALET_THREADS; default the number of CPUs)")
    var threads: String?

    // Scheduler
    @Option(help: "KV-cache capacity in tokens (16-token blocks), shared by all running requests. (env VALET_KV_CACHE_TOKENS; default 16384)")
    var kvCacheTokens: String?
    @Option(help: "KV-cache capacity in MiB instead of tokens. (env VALET_KV_CACHE_MIB; default unset)")
    var kvCacheMib: String?
    @Option(help: "Longest prompt + completion of one request; 0 uses the model's. (env VALET_CTX_SIZE; default 0)")
    var ctxSize: String?
    @Option(help: "Most sequences decoded in one engine step. (env VALET_MAX_BATCH; default 8)")
    var maxBatch: String?
    @Option(help: "Most prompt tokens prefilled per step, so long prompts don't stall streams. (env VALET_PREFILL_CHUNK; default 256)")
    var prefillChunk: String?
    @Option(help: "Most requests waiting in the lot; beyond it arrivals get 429. (env VALET_MAX_QUEUE; default 64)")
    var maxQueue: String?
    @Option(help: "How long a request may wait for capacity before a 503 queue_timeout; requests may lower or raise it with queue_timeout. (env VALET_QUEUE_TIMEOUT; default 30s)")
    var queueTimeout: String?
    @Option(help: "A high/critical request waiting this long preempts lower-priority running work. (env VALET_PREEMPT_AFTER; default 2s)")
    var preemptAfter: String?
    @Option(help: "A waiting request rises one priority class after this long. (env VALET_AGING_SECONDS; default 10s)")
    var agingSeconds: String?
    @Option(help: "How many times smaller requests may pass a waiting head that doesn't fit. (env VALET_MAX_OVERTAKES; default 4)")
    var maxOvertakes: String?
    @Option(help: "Admission policy: parking-lot (priorities, overtaking, preemption) or fifo. (env VALET_SCHEDULER; default parking-lot)")
    var scheduler: String?

    // Recorder
    @Flag(help: "Keep no job record: no SQLite file is opened or written; /metrics still serves live figures, /v1/metrics live stats only, /v1/jobs/{id} an error. (env VALET_NO_RECORDER=1; default off)")
    var noRecorder = false
    @Option(help: "SQLite database recording every job and queue samples. (env VALET_DB; default data/valet.sqlite)")
    var db: String?
    @Option(help: "How long recorded rows are kept. (env VALET_RETENTION; default 7d)")
    var retention: String?
    @Option(help: "How often queue depth is sampled. (env VALET_SAMPLE_INTERVAL; default 1s)")
    var sampleInterval: String?

    func resolve(environment: [String: String]) throws -> ServeConfig {
        let r = SettingResolver(environment: environment)
        var c = ServeConfig()
        c.model = r.string(model, "model", c.model)
        c.servedModelName = r.string(servedModelName, "served-model-name", ServeConfig.defaultServedName(forModel: c.model))
        c.apiKey = r.raw(apiKey, "api-key")?.0
        c.defaultMaxTokens = try r.int(defaultMaxTokens, "default-max-tokens", c.defaultMaxTokens, 1...1_000_000)
        c.host = r.string(host, "host", c.host)
        c.port = try r.int(port, "port", c.port, 0...65_535)
        c.maxBodyBytes = try r.int(maxBodyBytes, "max-body-bytes", c.maxBodyBytes, 1...(1 << 30))
        c.httpThreads = try r.int(httpThreads, "http-threads", c.httpThreads, 1...64)
        c.maxConnections = try r.int(maxConnections, "max-connections", c.maxConnections, 1...1_000_000)
        c.connectionTimeout = try r.int(connectionTimeout, "connection-timeout", c.connectionTimeout, 1...86_400)
        c.maxHeaderBytes = try r.int(maxHeaderBytes, "max-header-bytes", c.maxHeaderBytes, 4096...(16 << 20))
        c.shutdownGrace = try r.seconds(shutdownGrace, "shutdown-grace", c.shutdownGrace)
        c.threads = try r.int(threads, "threads", c.threads, 1...1024)
        c.kvCacheTokens = try r.int(kvCacheTokens, "kv-cache-tokens", c.kvCacheTokens, 16...(1 << 26))
        if r.raw(kvCacheMib, "kv-cache-mib") != nil {
            c.kvCacheMiB = try r.int(kvCacheMib, "kv-cache-mib", 0, 1...(1 << 20))
        }
        c.ctxSize = try r.int(ctxSize, "ctx-size", c.ctxSize, 0...(1 << 24))
        c.maxBatch = try r.int(maxBatch, "max-batch", c.maxBatch, 1...4096)
        c.prefillChunk = try r.int(prefillChunk, "prefill-chunk", c.prefillChunk, 1...(1 << 20))
        c.maxQueue = try r.int(maxQueue, "max-queue", c.maxQueue, 0...1_000_000)
        c.queueTimeout = try r.seconds(queueTimeout, "queue-timeout", c.queueTimeout)
        c.preemptAfter = try r.seconds(preemptAfter, "preempt-after", c.preemptAfter)
        c.agingSeconds = try r.seconds(agingSeconds, "aging-seconds", c.agingSeconds)
        c.maxOvertakes = try r.int(maxOvertakes, "max-overtakes", c.maxOvertakes, 0...1_000_000)
        c.scheduler = r.string(scheduler, "scheduler", c.scheduler)
        guard ["parking-lot", "fifo"].contains(c.scheduler) else {
            throw ConfigError(description: "--scheduler: '\(c.scheduler)' is not one of parking-lot, fifo")
        }
        c.recorderEnabled = try !r.bool(noRecorder, "no-recorder")
        c.db = r.string(db, "db", c.db)
        c.retentionSeconds = try r.seconds(retention, "retention", c.retentionSeconds)
        c.sampleInterval = try r.seconds(sampleInterval, "sample-interval", c.sampleInterval, minimum: 0.01)
        return c
    }

    func run() throws {
        let config: ServeConfig
        do {
            config = try resolve(environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
        let code = Server(config: config).run()
        if code != 0 { throw ExitCode(code) }
    }
}
