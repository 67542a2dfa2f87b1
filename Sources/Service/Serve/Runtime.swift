// The plug-in point for the model side: load the model, build the scheduler, and expose them to the API.
import Foundation
import Inference

/// Everything `Server` needs from a loaded model; built once at startup.
struct Runtime: Sendable {
    var backend: any CompletionBackend
    /// Model facts and scheduler settings for the one startup log line.
    var summary: String
    /// Stop admitting, let running jobs finish within the grace period, cancel the rest. Blocks until done.
    var shutdown: @Sendable (_ graceSeconds: Double) -> Void

    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    static func load(_ config: ServeConfig) throws -> Runtime {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: config.model)
        } catch {
            throw LoadError(description: "cannot load model '\(config.model)': \(error)")
        }
        _ = file
        // The engine, tokenizer and scheduler are wired here once they are in main: build the engine from
        // `file`, the Scheduler from `config`, start it, and return an EngineBackend wrapping them.
        throw LoadError(description: "this build has no inference engine yet (model '\(config.model)' opened fine)")
    }
}
