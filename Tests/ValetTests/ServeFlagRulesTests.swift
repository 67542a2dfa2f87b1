// The command line's edges: values that are out of range or contradict each other are one ConfigError naming the
// flag; paths are checked before anything is created; short flags; log settings and the log line's two formats.
import Foundation
import Testing
@testable import valet

private func configError(_ arguments: [String], _ environment: [String: String] = [:]) -> String? {
    do {
        _ = try ServeCommand.parse(arguments).resolve(environment: environment)
        return nil
    } catch let error as ConfigError {
        return error.description
    } catch {
        return "not a ConfigError: \(error)"
    }
}

@Suite struct ServeFlagRulesTests {
    @Test func negativeNumbersAreReadAsValuesAndRefusedByName() {
        let port = configError(["--port", "-1"])
        #expect(port?.hasPrefix("--port: '-1'") == true, "\(port ?? "accepted")")
        let temperature = configError(["--temperature", "-1"])
        #expect(temperature?.hasPrefix("--temperature: '-1'") == true, "\(temperature ?? "accepted")")
        #expect(configError(["--max-batch", "-3"])?.hasPrefix("--max-batch") == true)
        #expect(configError([], ["VALET_PORT": "-1"])?.hasPrefix("VALET_PORT") == true)
        for message in [port, temperature] { #expect(message?.contains("\n") == false) }
    }

    @Test func shortFlagsMeanTheLongOnes() throws {
        let c = try ServeCommand.parse(["-m", "/m/x.gguf", "-p", "9123", "-t", "3", "-c", "1024"]).resolve(environment: [:])
        #expect(c.model == "/m/x.gguf")
        #expect(c.http.port == 9123)
        #expect(c.threads == 3)
        #expect(c.scheduler.ctxSize == 1024)
        let generate = try GenerateCommand.parse(["-p", "hi", "-n", "5", "-m", "/m/y.gguf", "-t", "1"])
        #expect(generate.prompt == "hi" && generate.maxTokens == 5 && generate.model == "/m/y.gguf" && generate.threads == 1)
    }

    @Test func benchDefaultsTheModelAsServeAndGenerateDo() throws {
        #expect(try BenchCommand.parse([]).model == ServeConfig().model)
        #expect(try GenerateCommand.parse(["--prompt", "x"]).model == ServeConfig().model)
        #expect(try BenchCommand.parse(["-m", "/m/z.gguf"]).model == "/m/z.gguf")
    }

    @Test func bothKVCacheSizesAreAConflictWhicheverWayTheyCome() throws {
        #expect(configError(["--kv-cache-tokens", "1024", "--kv-cache-mib", "8"])?.contains("give only one") == true)
        #expect(configError(["--kv-cache-tokens", "1024"], ["VALET_KV_CACHE_MIB": "8"])?
            .hasPrefix("--kv-cache-tokens and VALET_KV_CACHE_MIB") == true)
        let one = try ServeCommand.parse(["--kv-cache-mib", "8"]).resolve(environment: [:])
        #expect(one.kvCacheMiB == 8)
    }

    @Test func anEmptyKeyOrModelNameIsAnErrorAsFlagAndAsVariable() throws {
        #expect(configError(["--api-key", ""])?.hasPrefix("--api-key is empty") == true)
        #expect(configError([], ["VALET_API_KEY": ""])?.hasPrefix("VALET_API_KEY is empty") == true)
        #expect(configError(["--api-key", "  "]) != nil)
        #expect(configError(["--served-model-name", ""])?.hasPrefix("--served-model-name is empty") == true)
        #expect(configError([], ["VALET_SERVED_MODEL_NAME": ""])?.hasPrefix("VALET_SERVED_MODEL_NAME is empty") == true)
        // Unset is off; a flag still beats the variable.
        #expect(try ServeCommand.parse([]).resolve(environment: [:]).apiKey == nil)
        #expect(try ServeCommand.parse(["--api-key", "k1"]).resolve(environment: ["VALET_API_KEY": "k2"]).apiKey == "k1")
        #expect(try ServeCommand.parse([]).resolve(environment: ["VALET_API_KEY": "k2"]).apiKey == "k2")
    }

    @Test func logAndCORSSettings() throws {
        let plain = try ServeCommand.parse([]).resolve(environment: [:])
        #expect(plain.logLevel == .info && plain.logFormat == .text && plain.allowedOrigins.isEmpty)
        let set = try ServeCommand.parse(["--log-level", "debug", "--allowed-origins", "https://a.example, http://b:3000"])
            .resolve(environment: ["VALET_LOG_FORMAT": "json", "VALET_LOG_LEVEL": "error"])
        #expect(set.logLevel == .debug && set.logFormat == .json)
        #expect(set.allowedOrigins == ["https://a.example", "http://b:3000"])
        #expect(configError([], ["VALET_LOG_LEVEL": "loud"])?.hasPrefix("VALET_LOG_LEVEL: 'loud'") == true)
        #expect(configError(["--allowed-origins", "a.example"])?.hasPrefix("--allowed-origins") == true)
        #expect((try? ServeCommand.parse(["--log-format", "xml"])) == nil)
        #expect(LogLevel.trace < .debug && LogLevel.warning < .error && !(LogLevel.info < .info))
    }

    @Test func logLinesAsTextAndAsJSON() throws {
        let time = Date(timeIntervalSince1970: 1_700_000_000.25)
        let text = Log.render(.warning, "request", fields: [("path", "/v1/x"), ("note", "two words")], format: .text, time: time)
        #expect(text == "2023-11-14T22:13:20.250Z warning request path=/v1/x note=\"two words\"\n")
        let json = Log.render(.info, "say \"hi\"\n", fields: [("status", "200")], format: .json, time: time)
        #expect(json.hasSuffix("}\n") && json.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(object == ["ts": "2023-11-14T22:13:20.250Z", "level": "info", "msg": "say \"hi\"\n", "status": "200"])
    }

    @Test func pathsAreCheckedBeforeAnythingIsCreated() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("valet-flags-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let gguf = dir.appendingPathComponent("m.gguf").path
        try Data("GGUF\u{3}\0\0\0".utf8).write(to: URL(fileURLWithPath: gguf))
        let notGGUF = dir.appendingPathComponent("n.gguf").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notGGUF))
        let file = dir.appendingPathComponent("plain-file").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let db = dir.appendingPathComponent("data/valet.sqlite").path

        #expect(pathError(model: gguf, db: db) == nil)
        #expect(pathError(model: dir.path, db: db)?.hasPrefix("--model: '\(dir.path)' is a directory") == true)
        #expect(pathError(model: notGGUF, db: db)?.hasPrefix("--model: '\(notGGUF)' is not a GGUF file") == true)
        #expect(pathError(model: dir.path + "/absent.gguf", db: db)?.hasPrefix("--model: no file") == true)
        #expect(pathError(model: gguf, db: file + "/sub/valet.sqlite")
                == "--db: cannot create '\(file)/sub/valet.sqlite': '\(file)' is a file, not a directory")
        #expect(pathError(model: gguf, db: dir.path)?.hasPrefix("--db: '\(dir.path)' is a directory") == true)
        // With the recorder off the database path is never used, so it is not checked either.
        #expect(pathError(model: gguf, db: file + "/x", recorder: false) == nil)
        // Checking made nothing.
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("data").path))
    }
}

private func pathError(model: String, db: String, recorder: Bool = true) -> String? {
    var config = ServeConfig()
    config.model = model
    config.db = db
    config.recorderEnabled = recorder
    do {
        try config.checkPaths()
        return nil
    } catch {
        return "\(error)"
    }
}
