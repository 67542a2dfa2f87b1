// The serving process's life: HTTP up first (health says loading), model loaded, serve, graceful stop.
import OpenAIAPI
import HTTPServer
import Dispatch
import Foundation
import Inference
import Locks
import Synchronization

final class Server {
    let config: ServeConfig

    init(config: ServeConfig) {
        self.config = config
    }

    /// Process exit code: 0 after a clean signal-driven shutdown.
    func run() -> Int32 {
        let service = OpenAIService(settings: .init(
            servedModelName: config.servedModelName, apiKey: config.apiKey, defaultMaxTokens: config.defaultMaxTokens,
            systemFingerprint: "valet-\(ValetVersion.string)"))
        var router = Router()
        service.register(on: &router)
        let telemetry: Telemetry
        do {
            telemetry = try Telemetry(config: config, httpHandlers: router.labels)
        } catch {
            Log.error("cannot use --db \(config.db) for the job record: \(error); "
                      + "give a writable path with --db, or run with --no-recorder")
            return 1
        }
        telemetry.register(on: &router, service: service)
        // Router-wide, so 404s, 405s and the server's own refusals are counted (and logged) too.
        router.use(HTTPMetricsMiddleware { telemetry.record($0) })
        router.use(RequestLogMiddleware { Log.emit(Server.level(of: $0), "request", fields: $0.fields) })
        if !config.allowedOrigins.isEmpty {
            router.use(CORSMiddleware(allowedOrigins: config.allowedOrigins, errorResponse: APIError.httpErrorResponse))
        }

        let server = HTTPServer(configuration: config.http, router: router, errorResponse: APIError.httpErrorResponse)
        let probes = config.probePort.map { port in
            HTTPServer(configuration: Server.probeConfiguration(config.http, port: port),
                       router: Server.probeRouter(service: service, telemetry: telemetry),
                       errorResponse: APIError.httpErrorResponse)
        }

        // Signals are blocked for the process and delivered through dispatch: no handler runs on a random thread.
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])

        do {
            try server.start()
            try probes?.start()
        } catch {
            Log.error("\(error)")
            server.stop()
            probes?.stop()
            telemetry.discardCreated()
            return 1
        }
        let host = config.http.host
        let address = "http://\(host.contains(":") ? "[\(host)]" : host):\(server.port)"
        if let probes { Log.info("probes (/health, /metrics) on port \(probes.port)") }

        let runtime: Runtime
        do {
            let registry = telemetry.registry
            runtime = try Runtime.load(config, observer: telemetry.observer,
                                       onGrammarCompiled: { registry.grammarCompiled(seconds: $0) })
        } catch {
            Log.error("\(error)")
            server.stop()
            probes?.stop()
            telemetry.discardCreated()
            return 1
        }
        telemetry.attach(stats: runtime.stats)
        telemetry.registry.setModelInfo(model: config.servedModelName, quantization: runtime.quantization)
        service.ready(backend: runtime.backend)
        Log.info("valet \(ValetVersion.string) serving \(config.servedModelName) (\(runtime.summary); kernels \(KernelPath.name)) on \(address); "
                 + "scheduler \(config.scheduler.kind.rawValue), prefix-cache \(config.scheduler.prefixCache ? "on" : "off"), kv-cache \(config.kvCacheMiB.map { "\($0) MiB" } ?? "\(config.kvCacheTokens) tokens"), "
                 + "max-batch \(config.scheduler.maxBatch), max-queue \(config.scheduler.maxQueue), queue-timeout \(config.scheduler.queueTimeout)s, "
                 + "auth \(config.apiKey == nil ? "off" : "on"), recorder \(config.recorderEnabled ? config.db : "off")")

        let cutShort = Atomic<Bool>(false)
        signals.onRepeat { number in
            Log.info("received \(Server.name(of: number)) again; ending the grace period now")
            cutShort.store(true, ordering: .sequentiallyConsistent)
            runtime.endGrace()
        }
        let signal = signals.wait()
        Log.info("received \(Server.name(of: signal)); stopping (grace \(config.shutdownGrace)s; a second signal ends it at once)")
        // Readiness fails first, so endpoints stop routing here while the drain runs.
        service.stopping()
        server.quiesce()
        runtime.shutdown(cutShort.load(ordering: .sequentiallyConsistent) ? 0 : config.shutdownGrace)
        // Error events of cancelled streams still have to reach their clients.
        let deadline = Date().addingTimeInterval(2)
        while server.openExchanges > 0 && Date() < deadline { usleep(10_000) }
        server.stop()
        probes?.stop()
        telemetry.flush()
        Log.info("stopped")
        return 0
    }
}

extension Server {
    static func name(of signal: Int32) -> String { signal == SIGINT ? "SIGINT" : "SIGTERM" }

    /// Failures stand out (5xx error, 4xx warning); probes and scrapes that succeed are debug, or they would be
    /// most of the log.
    static func level(of entry: AccessLogEntry) -> LogLevel {
        if entry.status >= 500 { return .error }
        if entry.status >= 400 { return .warning }
        if entry.route == "/health" || entry.route == "/health/live" || entry.route == "/metrics" { return .debug }
        return .info
    }

    /// The probe listener keeps the API listener's address and request limits; a handful of connections and one
    /// thread are plenty for kubelets and scrapers.
    static func probeConfiguration(_ http: HTTPServerConfiguration, port: UInt16) -> HTTPServerConfiguration {
        var c = http
        c.port = port
        c.threads = 1
        c.connectionLimit = 64
        c.connectionsPerAddress = 0
        c.maxBodyBytes = 4096
        c.maxBufferedBodyBytes = 64 * 4096
        return c
    }

    static func probeRouter(service: OpenAIService, telemetry: Telemetry) -> Router {
        var router = Router()
        service.registerProbes(on: &router)
        telemetry.registerScrape(on: &router)
        router.use(HTTPMetricsMiddleware { telemetry.record($0) })
        return router
    }
}

/// Waits for one of a few signals, delivered on a dispatch queue rather than in a signal handler. Signals after the
/// first go to the `onRepeat` action (none until one is set).
final class SignalWaiter: @unchecked Sendable {
    // Written once in init; the sources must stay alive for as long as we wait.
    private var sources: [DispatchSourceSignal] = []
    private let semaphore = DispatchSemaphore(value: 0)
    private let received = SignalNumber()
    private let count = Atomic<Int>(0)
    private let repeatAction = Locked<(@Sendable (Int32) -> Void)?>(nil)

    init(signals: [Int32]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.received(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func received(_ number: Int32) {
        if count.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue == 0 {
            received.set(number)
            semaphore.signal()
        } else {
            repeatAction.withLock { $0 }?(number)
        }
    }

    func wait() -> Int32 {
        semaphore.wait()
        return received.get()
    }

    func onRepeat(_ action: @escaping @Sendable (Int32) -> Void) {
        repeatAction.withLock { $0 = action }
    }
}

/// The last signal number seen.
final class SignalNumber: Sendable {
    private let value = Atomic<Int32>(0)
    func set(_ v: Int32) { value.store(v, ordering: .sequentiallyConsistent) }
    func get() -> Int32 { value.load(ordering: .sequentiallyConsistent) }
}
