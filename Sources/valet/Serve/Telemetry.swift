// The job record and the Prometheus registry for the serving process, and the routes that expose them:
// /metrics, /v1/metrics and /v1/jobs/{id}.
import OpenAIAPI
import HTTPServer
import Foundation
import Locks
import ValetMetrics
import Inference

final class Telemetry: Sendable {
    let registry: ValetMetricsRegistry
    /// nil with `--no-recorder`: nothing is written and the routes that read the record say so.
    let recorder: Recorder?
    let sampler: QueueSampler?
    /// Builds the /v1/metrics document for a window; set once the scheduler runs.
    private let report = Locked<(@Sendable (Double) throws -> V1MetricsReport)?>(nil)
    /// What opening the record created (directories outermost first, then the database files), so a start that
    /// fails later can leave the disk as it found it.
    private let created: [String]

    init(config: ServeConfig, httpHandlers: [String]) throws {
        registry = ValetMetricsRegistry(version: ValetVersion.string, revision: ValetVersion.revision, kernel: KernelPath.name,
                                        httpHandlers: httpHandlers + Telemetry.routes + ["method_not_allowed", "not_found", "unmatched"])
        registry.setSchedulerLimits(maxBatch: config.scheduler.maxBatch, maxQueue: config.scheduler.maxQueue)
        guard config.recorderEnabled else {
            recorder = nil
            sampler = nil
            created = []
            return
        }
        let files = FileManager.default
        var missing: [String] = []
        var directory = URL(fileURLWithPath: config.db).deletingLastPathComponent()
        while !files.fileExists(atPath: directory.path) {
            missing.insert(directory.path, at: 0)
            directory = directory.deletingLastPathComponent()
        }
        if !files.fileExists(atPath: config.db) {
            missing += ["", "-wal", "-shm"].map { config.db + $0 }
        }
        created = missing
        try files.createDirectory(atPath: URL(fileURLWithPath: config.db).deletingLastPathComponent().path,
                                  withIntermediateDirectories: true)
        let recorder = try Recorder(path: config.db, options: RecorderOptions(retention: config.retentionSeconds),
                                    log: Telemetry.recorderLog)
        registry.attach(recorder: recorder)
        let sampler = QueueSampler(recorder: recorder, interval: config.sampleInterval)
        try sampler.start()
        self.recorder = recorder
        self.sampler = sampler
    }

    /// The recorder's messages in the process's log format.
    static let recorderLog: RecorderLogSink = { level, message in
        switch level {
        case .info: Log.info(message)
        case .warning: Log.warning(message)
        case .error: Log.error(message)
        }
    }

    /// The scheduler is up: /v1/metrics can report its live state.
    func attach(report source: @escaping @Sendable (Double) throws -> V1MetricsReport) {
        report.withLock { $0 = source }
    }

    func record(_ exchange: HTTPExchangeRecord) {
        registry.httpRequest(handler: exchange.handler, method: exchange.method, status: exchange.status,
                             durationSeconds: exchange.seconds)
    }

    func flush() {
        sampler?.stop()
        _ = recorder?.flush()
        recorder?.close()
    }

    /// After a failed start: closes the record and removes what opening it created (never a database that was
    /// there before).
    func discardCreated() {
        flush()
        for path in created.reversed() { try? FileManager.default.removeItem(atPath: path) }
    }

    static let routes = ["/metrics", "/v1/metrics", "/v1/jobs/{id}"]

    func register(on router: inout Router, service: OpenAIService) {
        registerScrape(on: &router)
        router.add("GET", "/v1/metrics", middleware: service.apiMiddleware) { [self] request, sink in
            sink.respond(try v1Metrics(window: V1MetricsReport.window(fromQuery: request.query["window"])))
        }
        router.add("GET", "/v1/jobs/{id}", middleware: service.apiMiddleware) { [self] request, sink in
            let id = request.pathParameters["id"] ?? ""
            guard let recorder else { throw Telemetry.recorderDisabled(id: id) }
            guard let job = (try? recorder.job(id: id)) ?? nil else {
                throw APIError(status: 404, message: "No job with id '\(id)'.", type: "invalid_request_error",
                               param: "id", code: "job_not_found")
            }
            sink.respond(.json(200, OpenAICodec.json(job)))
        }
    }

    /// /metrics alone, for the main listener and the probe listener alike.
    func registerScrape(on router: inout Router) {
        router.add("GET", "/metrics") { [self] _, sink in
            sink.respond(HTTPResponse(status: 200, headers: [("Content-Type", ValetMetricsRegistry.contentType)],
                                      body: .bytes(registry.renderBytes())))
        }
    }

    /// 404 like any id this server can't find, with a code and message that say why: there is no record at all.
    static func recorderDisabled(id: String) -> APIError {
        APIError(status: 404, message: "Job '\(id)' cannot be looked up: this server runs with --no-recorder "
                 + "(VALET_NO_RECORDER), so it keeps no job records.", type: "invalid_request_error", param: "id",
                 code: "recorder_disabled")
    }

    /// The /v1/metrics document for a window; nil until the scheduler runs.
    func v1Report(window: Double) throws -> V1MetricsReport? {
        try report.withLock { $0 }?(window)
    }

    private func v1Metrics(window: Double) throws -> HTTPResponse {
        do {
            guard let document = try v1Report(window: window) else {
                throw APIError.notReady("The model is still loading; retry shortly.")
            }
            return .json(200, OpenAICodec.json(document))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(status: 500, message: "Reading the job record failed: \(error)", type: "server_error",
                           code: "recorder_error")
        }
    }
}
