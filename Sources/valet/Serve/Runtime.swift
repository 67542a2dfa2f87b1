// The model side of the serving process: load the model, build and start the scheduler, expose them to the API.
import OpenAIAPI
import Scheduling
import Foundation
import Inference

/// Everything `Server` needs from a loaded model; built once at startup.
struct Runtime: Sendable {
    var backend: any CompletionBackend
    /// Model facts for the one startup log line.
    var summary: String
    /// Stop admitting, let running jobs finish within the grace period, cancel the rest. Blocks until done.
    var shutdown: @Sendable (_ graceSeconds: Double) -> Void
    /// Ends a shutdown's grace period at once (a second signal).
    var endGrace: @Sendable () -> Void
    /// The weights' dominant type (e.g. `Q4_1`), for `valet_model_info`.
    var quantization: String
    /// The scheduler's live state.
    var stats: @Sendable () -> SchedulerStats

    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// `onGrammarCompiled` hears how long each constraint took to compile.
    static func load(_ config: ServeConfig, observer: (any SchedulerObserver)?,
                     onGrammarCompiled: @escaping @Sendable (Double) -> Void = { _ in }) throws -> Runtime {
        let model: LoadedModel
        do {
            model = try LoadedModel(path: config.model, threads: config.threads, kvCacheTokens: try kvCacheTokens(config))
        } catch {
            throw LoadError(description: "cannot load model '\(config.model)': \(error)")
        }
        if let warning = model.template.warning { Log.warning(warning) }
        var scheduling = config.scheduler
        // Cached KV is only valid for the weights that computed it: the file and its size name them.
        scheduling.modelIdentity = "\(URL(fileURLWithPath: config.model).lastPathComponent):\(model.file.fileSize)"
        let scheduler = Scheduler(
            config: scheduling,
            engine: model.engine, decoder: model.tokenizer, observer: observer)
        scheduler.start()
        let sampling = SamplingDefaults.resolve(
            flags: config.sampling, model: SamplingDefaults.Overrides(modelMetadata: { model.file.double($0) }))
        let backend = EngineBackend(scheduler: scheduler, model: model, samplingDefaults: sampling, pooling: config.pooling,
                                    onGrammarCompiled: onGrammarCompiled)
        let mib = Double(model.file.fileSize) / 1_048_576
        let summary = "\(URL(fileURLWithPath: config.model).lastPathComponent), \(String(format: "%.1f", mib)) MiB, "
            + "\(model.quantization), \(model.engine.config.layers) layers, context \(backend.contextLength), "
            + "kv-cache \(model.engine.totalBlocks) blocks of \(model.engine.blockSize), \(config.threads) threads; "
            + "sampling defaults \(sampling.summary); pooling \(config.pooling.rawValue)"
        return Runtime(backend: backend, summary: summary,
                       shutdown: { grace in scheduler.shutdown(grace: grace) }, endGrace: { scheduler.endGrace() },
                       quantization: model.quantization,
                       stats: { scheduler.stats() })
    }

    /// Capacity in tokens from --kv-cache-tokens, or from --kv-cache-mib at f16 keys and values.
    static func kvCacheTokens(_ config: ServeConfig) throws -> Int {
        guard let mib = config.kvCacheMiB else { return config.kvCacheTokens }
        let llama: LlamaConfig
        do {
            llama = try LlamaConfig(file: try GGUFFile(path: config.model))
        } catch {
            throw LoadError(description: "cannot load model '\(config.model)': \(error)")
        }
        let bytesPerToken = 2 * llama.layers * llama.kvDim * 2
        return max(16, mib * 1_048_576 / max(1, bytesPerToken))
    }
}
