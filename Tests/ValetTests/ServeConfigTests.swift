// valet serve's configuration: flags over VALET_* variables over defaults, switches, durations, the scheduler enum,
// and help that reads each default from the type that owns it.
import Testing
import HTTPServer
import Scheduling
import Inference
@testable import valet

@Suite struct ServeConfigTests {
    @Test func flagsBeatEnvironmentBeatDefaults() throws {
        var command = try ServeCommand.parse(["--port", "9001", "--model", "/x/My-Model.Q8_0.gguf"])
        var config = try command.resolve(environment: ["VALET_PORT": "7000", "VALET_MAX_QUEUE": "12", "VALET_RETENTION": "2d",
                                                       "VALET_SCHEDULER": "fifo", "VALET_API_KEY": "k"])
        #expect(config.http.port == 9001)
        #expect(config.scheduler.maxQueue == 12)
        #expect(config.retentionSeconds == 2 * 86_400)
        #expect(config.scheduler.kind == .fifo)
        #expect(config.apiKey == "k")
        #expect(config.servedModelName == "My-Model.Q8_0")
        #expect(config.http.host == "127.0.0.1")
        #expect(config.http.maxBodyBytes == 1 << 20)
        #expect(config.defaultMaxTokens == 512)
        #expect(config.sampleInterval == 1)
        command = try ServeCommand.parse([])
        config = try command.resolve(environment: [:])
        #expect(config.http.port == 8080)
        #expect(config.servedModelName == "SmolLM2-135M-Instruct.Q4_1")
        #expect(config.apiKey == nil)
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_PORT": "http"]) }
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_SCHEDULER": "random"]) }
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_SHUTDOWN_GRACE": "soon"]) }
    }

    @Test func samplingDefaultsAndPoolingFromFlagsAndVariables() throws {
        let plain = try ServeCommand.parse([])
        let none = try plain.resolve(environment: [:])
        #expect(none.sampling.isEmpty)
        #expect(none.pooling == .mean)
        let command = try ServeCommand.parse(["--temperature", "0", "--top-k", "12", "--pooling", "last"])
        let c = try command.resolve(environment: ["VALET_TEMPERATURE": "1.5", "VALET_TOP_P": "0.5", "VALET_MIN_P": "0.1",
                                                  "VALET_REPEAT_PENALTY": "1.2", "VALET_POOLING": "cls"])
        #expect(c.sampling == SamplingDefaults.Overrides(temperature: 0, topK: 12, topP: 0.5, minP: 0.1,
                                                         repetitionPenalty: 1.2))
        #expect(c.pooling == .last)
        #expect(try plain.resolve(environment: ["VALET_POOLING": "cls"]).pooling == .cls)
        for bad in [["VALET_TEMPERATURE": "3"], ["VALET_TOP_P": "0"], ["VALET_TOP_K": "-1"], ["VALET_MIN_P": "x"],
                    ["VALET_REPEAT_PENALTY": "0"], ["VALET_POOLING": "max"]] {
            #expect(throws: ConfigError.self) { try plain.resolve(environment: bad) }
        }
    }

    @Test func noRecorderFlagAndVariable() throws {
        let plain = try ServeCommand.parse([])
        #expect(try plain.resolve(environment: [:]).recorderEnabled)
        #expect(try plain.resolve(environment: ["VALET_NO_RECORDER": "0"]).recorderEnabled)
        #expect(try !plain.resolve(environment: ["VALET_NO_RECORDER": "1"]).recorderEnabled)
        #expect(try !plain.resolve(environment: ["VALET_NO_RECORDER": "true"]).recorderEnabled)
        #expect(throws: ConfigError.self) { try plain.resolve(environment: ["VALET_NO_RECORDER": "maybe"]) }
        let flagged = try ServeCommand.parse(["--no-recorder"])
        // The flag wins even over a variable that says otherwise.
        #expect(try !flagged.resolve(environment: ["VALET_NO_RECORDER": "0"]).recorderEnabled)
    }

    @Test func durations() {
        #expect(DurationText.seconds("7d") == 604_800)
        #expect(DurationText.seconds("500ms") == 0.5)
        #expect(DurationText.seconds("1s") == 1)
        #expect(DurationText.seconds("5m") == 300)
        #expect(DurationText.seconds("2.5") == 2.5)
        #expect(DurationText.seconds("-1s") == nil)
        #expect(DurationText.seconds("x") == nil)
    }

    @Test func durationsPrintAsTyped() {
        #expect(DurationText.text(30) == "30s")
        #expect(DurationText.text(2) == "2s")
        #expect(DurationText.text(7 * 86_400) == "7d")
        #expect(DurationText.text(0.5) == "500ms")
        for seconds in [30.0, 2, 10, 1, 604_800, 0.5, 90, 7200] {
            #expect(DurationText.seconds(DurationText.text(seconds)) == seconds)
        }
    }

    @Test func prefixCacheIsOnByDefaultAndTurnsOffByFlagOrVariable() throws {
        let plain = try ServeCommand.parse([])
        #expect(SchedulerConfig().prefixCache)
        #expect(try plain.resolve(environment: [:]).scheduler.prefixCache)
        #expect(try !plain.resolve(environment: ["VALET_PREFIX_CACHE": "off"]).scheduler.prefixCache)
        #expect(try plain.resolve(environment: ["VALET_PREFIX_CACHE": "on"]).scheduler.prefixCache)
        #expect(throws: ConfigError(description: "VALET_PREFIX_CACHE: 'maybe' is not one of on, off")) {
            try plain.resolve(environment: ["VALET_PREFIX_CACHE": "maybe"])
        }
        let off = try ServeCommand.parse(["--prefix-cache", "off"])
        #expect(try !off.resolve(environment: ["VALET_PREFIX_CACHE": "on"]).scheduler.prefixCache)
        #expect(try ServeCommand.parse(["--prefix-cache", "on"]).resolve(environment: ["VALET_PREFIX_CACHE": "off"])
            .scheduler.prefixCache)
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--prefix-cache", "maybe"]) }
    }

    @Test func schedulerKindIsParsedAsAnEnum() throws {
        let plain = try ServeCommand.parse([])
        #expect(try plain.resolve(environment: [:]).scheduler.kind == SchedulerConfig().kind)
        #expect(try plain.resolve(environment: ["VALET_SCHEDULER": "fifo"]).scheduler.kind == .fifo)
        #expect(try plain.resolve(environment: ["VALET_SCHEDULER": "parking-lot"]).scheduler.kind == .parkingLot)
        #expect(throws: ConfigError(description: "VALET_SCHEDULER: 'random' is not one of parking-lot, fifo")) {
            try plain.resolve(environment: ["VALET_SCHEDULER": "random"])
        }

        let fifo = try ServeCommand.parse(["--scheduler", "fifo"])
        #expect(fifo.scheduler == .fifo)
        // The flag wins over the variable, even over a variable that would not parse.
        #expect(try fifo.resolve(environment: ["VALET_SCHEDULER": "parking-lot"]).scheduler.kind == .fifo)
        #expect(try fifo.resolve(environment: ["VALET_SCHEDULER": "random"]).scheduler.kind == .fifo)
        #expect(try ServeCommand.parse(["--scheduler", "parking-lot"]).scheduler == .parkingLot)

        // argument-parser itself refuses a name that is not a case, naming the flag and the valid values.
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--scheduler", "random"]) }
        do {
            _ = try ServeCommand.parse(["--scheduler", "random"])
        } catch {
            let message = ServeCommand.message(for: error)
            #expect(message.contains("--scheduler"))
            #expect(message.contains("'parking-lot'") && message.contains("'fifo'"))
            #expect(!message.contains("\n"))
        }
    }

    @Test func subConfigsReceiveFlagValues() throws {
        let command = try ServeCommand.parse([
            "--host", "0.0.0.0", "--port", "9100", "--max-body-bytes", "4096", "--http-threads", "3",
            "--max-connections", "50", "--connection-timeout", "7", "--max-header-bytes", "8192",
            "--max-connections-per-ip", "0", "--request-read-timeout", "4", "--max-buffered-body-bytes", "65536",
            "--probe-port", "9091",
            "--ctx-size", "512", "--max-batch", "3", "--prefill-chunk", "64", "--max-queue", "5", "--queue-timeout", "1500ms",
            "--preempt-after", "1s", "--aging-seconds", "0", "--max-overtakes", "2", "--scheduler", "fifo",
        ])
        let config = try command.resolve(environment: [:])
        #expect(config.http.host == "0.0.0.0")
        #expect(config.http.port == 9100)
        #expect(config.http.maxBodyBytes == 4096)
        #expect(config.http.threads == 3)
        #expect(config.http.connectionLimit == 50)
        #expect(config.http.connectionTimeout == 7)
        #expect(config.http.maxHeaderBytes == 8192)
        #expect(config.http.connectionsPerAddress == 0)
        #expect(config.http.requestReadTimeout == 4)
        #expect(config.http.maxBufferedBodyBytes == 65536)
        #expect(config.probePort == 9091)
        #expect(config.scheduler.ctxSize == 512)
        #expect(config.scheduler.maxBatch == 3)
        #expect(config.scheduler.prefillChunk == 64)
        #expect(config.scheduler.maxQueue == 5)
        #expect(config.scheduler.queueTimeout == 1.5)
        #expect(config.scheduler.preemptAfter == 1)
        #expect(config.scheduler.agingSeconds == 0)
        #expect(config.scheduler.maxOvertakes == 2)
        #expect(config.scheduler.kind == .fifo)

        // Unset, the sub-configs are the libraries' own defaults; --ctx-size 0 (the model's) is SchedulerConfig's nil.
        let plain = try ServeCommand.parse([]).resolve(environment: [:])
        let scheduler = SchedulerConfig(), http = HTTPServerConfiguration()
        #expect(plain.scheduler.ctxSize == nil)
        #expect(plain.scheduler.maxBatch == scheduler.maxBatch && plain.scheduler.prefillChunk == scheduler.prefillChunk)
        #expect(plain.scheduler.maxQueue == scheduler.maxQueue && plain.scheduler.queueTimeout == scheduler.queueTimeout)
        #expect(plain.scheduler.preemptAfter == scheduler.preemptAfter && plain.scheduler.agingSeconds == scheduler.agingSeconds)
        #expect(plain.scheduler.maxOvertakes == scheduler.maxOvertakes && plain.scheduler.kind == scheduler.kind)
        #expect(plain.http.host == http.host && plain.http.port == http.port && plain.http.threads == http.threads)
        #expect(plain.http.connectionLimit == http.connectionLimit && plain.http.connectionTimeout == http.connectionTimeout)
        #expect(plain.http.maxHeaderBytes == http.maxHeaderBytes && plain.http.maxBodyBytes == http.maxBodyBytes)
        #expect(plain.http.connectionsPerAddress == http.connectionsPerAddress)
        #expect(plain.http.requestReadTimeout == http.requestReadTimeout)
        #expect(plain.http.maxBufferedBodyBytes == http.maxBufferedBodyBytes)
        #expect(plain.probePort == nil)
        #expect(try ServeCommand.parse([]).resolve(environment: ["VALET_PROBE_PORT": "9092"]).probePort == 9092)
        #expect(try ServeCommand.parse(["--ctx-size", "0"]).resolve(environment: [:]).scheduler.ctxSize == nil)
    }

    @Test func helpShowsEachOwnersDefault() {
        // Wide enough that no option's line wraps.
        let help = ServeCommand.helpMessage(columns: 10_000)
        let scheduler = SchedulerConfig(), http = HTTPServerConfiguration(), serve = ServeConfig()
        let expected: [(String, String)] = [
            ("VALET_MAX_BATCH", "\(scheduler.maxBatch)"),
            ("VALET_PREFILL_CHUNK", "\(scheduler.prefillChunk)"),
            ("VALET_MAX_QUEUE", "\(scheduler.maxQueue)"),
            ("VALET_QUEUE_TIMEOUT", DurationText.text(scheduler.queueTimeout)),
            ("VALET_PREEMPT_AFTER", DurationText.text(scheduler.preemptAfter)),
            ("VALET_AGING_SECONDS", DurationText.text(scheduler.agingSeconds)),
            ("VALET_MAX_OVERTAKES", "\(scheduler.maxOvertakes)"),
            ("VALET_SCHEDULER", scheduler.kind.rawValue),
            ("VALET_CTX_SIZE", "\(scheduler.ctxSize ?? 0)"),
            ("VALET_HOST", http.host),
            ("VALET_PORT", "\(http.port)"),
            ("VALET_HTTP_THREADS", "\(http.threads)"),
            ("VALET_MAX_CONNECTIONS", "\(http.connectionLimit)"),
            ("VALET_CONNECTION_TIMEOUT", "\(http.connectionTimeout)"),
            ("VALET_MAX_HEADER_BYTES", "\(http.maxHeaderBytes)"),
            ("VALET_MAX_BODY_BYTES", "\(http.maxBodyBytes)"),
            ("VALET_MODEL", serve.model),
            ("VALET_DEFAULT_MAX_TOKENS", "\(serve.defaultMaxTokens)"),
            ("VALET_KV_CACHE_TOKENS", "\(serve.kvCacheTokens)"),
            ("VALET_SHUTDOWN_GRACE", DurationText.text(serve.shutdownGrace)),
            ("VALET_DB", serve.db),
            ("VALET_RETENTION", DurationText.text(serve.retentionSeconds)),
            ("VALET_SAMPLE_INTERVAL", DurationText.text(serve.sampleInterval)),
        ]
        for (variable, value) in expected {
            #expect(help.contains("(env \(variable); default \(value))"), "\(variable) should show default \(value)")
        }
        #expect(help.contains("default \(SchedulerConfig().maxBatch))"))
        // Durations print as a user would type them, as they always have.
        #expect(help.contains("(env VALET_QUEUE_TIMEOUT; default 30s)"))
        #expect(help.contains("(env VALET_PREEMPT_AFTER; default 2s)"))
        #expect(help.contains("(env VALET_AGING_SECONDS; default 10s)"))
        #expect(help.contains("(env VALET_RETENTION; default 7d)"))
        #expect(help.contains("(env VALET_NO_RECORDER=1; default off)"))
    }
}
