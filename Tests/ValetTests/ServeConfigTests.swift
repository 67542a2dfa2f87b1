// valet serve's configuration: flags over VALET_* variables over defaults, switches and durations.
import Testing
@testable import valet

@Suite struct ServeConfigTests {
    @Test func flagsBeatEnvironmentBeatDefaults() throws {
        var command = try ServeCommand.parse(["--port", "9001", "--model", "/x/My-Model.Q8_0.gguf"])
        var config = try command.resolve(environment: ["VALET_PORT": "7000", "VALET_MAX_QUEUE": "12", "VALET_RETENTION": "2d",
                                                       "VALET_SCHEDULER": "fifo", "VALET_API_KEY": "k"])
        #expect(config.port == 9001)
        #expect(config.maxQueue == 12)
        #expect(config.retentionSeconds == 2 * 86_400)
        #expect(config.scheduler == "fifo")
        #expect(config.apiKey == "k")
        #expect(config.servedModelName == "My-Model.Q8_0")
        #expect(config.host == "127.0.0.1")
        #expect(config.maxBodyBytes == 1 << 20)
        #expect(config.defaultMaxTokens == 512)
        #expect(config.sampleInterval == 1)
        command = try ServeCommand.parse([])
        config = try command.resolve(environment: [:])
        #expect(config.port == 8080)
        #expect(config.servedModelName == "SmolLM2-135M-Instruct.Q4_1")
        #expect(config.apiKey == nil)
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_PORT": "http"]) }
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_SCHEDULER": "random"]) }
        #expect(throws: ConfigError.self) { try command.resolve(environment: ["VALET_SHUTDOWN_GRACE": "soon"]) }
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
}
