// Runs Tests/python/tokenizer_reference.py (Hugging Face tokenizers, regex, jinja2) to get independent answers.
import Foundation
import Testing

enum PythonReference {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/tokenizer_reference.py").path
    }

    /// Sends `request` as JSON and returns the script's JSON answer.
    static func run(_ request: [String: Any]) throws -> [String: Any] {
        let dir = FileManager.default.temporaryDirectory
        let input = dir.appendingPathComponent("valet-tokref-\(getpid())-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: request).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ProcessInfo.processInfo.environment["PYTHON"] ?? "python3", scriptPath, input.path]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting: a large answer would otherwise fill the pipe and stall the script.
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "tokenizer_reference.py failed (pip install tokenizers regex jinja2 gguf?): "
                + String(decoding: errors, as: UTF8.self))
        }
        guard let answer = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "tokenizer_reference.py printed no JSON object")
        }
        return answer
    }
}
