// Where the tests find the default model: VALET_TEST_MODEL, or the package's models/ folder.
import Foundation

public enum TestModel {
    /// The default model, from VALET_TEST_MODEL or the package's models/ folder.
    public static var path: String? {
        if let p = ProcessInfo.processInfo.environment["VALET_TEST_MODEL"], FileManager.default.fileExists(atPath: p) { return p }
        let local = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }
}
