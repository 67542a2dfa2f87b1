// Helpers for the metrics tests: temporary directories and shell commands.
@testable import ValetMetrics
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/valet-metrics-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { buffer in
            guard let made = mkdtemp(buffer.baseAddress!) else { fatalError("mkdtemp failed") }
            return String(cString: made)
        }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        // Test-only cleanup of a directory we created; shelling out keeps this tiny.
        _ = system("rm -rf '\(path)'")
    }
}

/// Runs a shell command; returns its exit status and combined output.
func shell(_ command: String) -> (status: Int32, output: String) {
    guard let pipe = popen(command + " 2>&1", "r") else { return (-1, "") }
    var output = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, pipe)
        if n <= 0 { break }
        output.append(contentsOf: chunk[0..<n])
    }
    let status = pclose(pipe)
    return (status >> 8, String(decoding: output, as: UTF8.self))
}
