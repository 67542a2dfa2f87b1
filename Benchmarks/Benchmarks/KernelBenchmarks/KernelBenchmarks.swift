// package-benchmark micro-benchmarks of the quantized kernels on the default model's real weights: activation
// quantization, a Q4_1 × quantized-activation dot product, Q4_1 matvec / matmul and the Q8_0 output projection (one thread).
import Benchmark
import CKernels
import Foundation
import Inference

/// A weight matrix of the real model, as the C kernels take it.
struct Weights: @unchecked Sendable {
    /// Keeps the mapping alive: `base` points into it and the benchmarks run after registration returns.
    let file: GGUFFile
    let type: Int32
    let base: UnsafeRawPointer
    let rows: Int
    let rowLength: Int
    let rowBytes: Int
    var blocksPerRow: Int32 { Int32(rowLength / 32) }

    init(_ file: GGUFFile, _ name: String) throws {
        let info = try file.tensor(name)
        self.file = file
        type = Int32(info.type.rawValue)
        base = file.data(info)
        rows = info.rowCount
        rowLength = info.rowLength
        rowBytes = info.byteCount / info.rowCount
    }
}

/// Quantized activation columns, 8 of them, filled with a fixed pseudo-random pattern.
final class Columns: @unchecked Sendable {
    let width: Int
    let floats: UnsafeMutablePointer<Float>
    let quantized: UnsafeMutableRawPointer
    let rowBytes: Int
    static let count = 8

    init(width: Int) {
        self.width = width
        floats = .allocate(capacity: width * Self.count)
        rowBytes = valet_q16_row_bytes(Int32(width))
        quantized = .allocate(byteCount: rowBytes * Self.count, alignment: 64)
        var state: UInt32 = 0x9E37_79B9
        for i in 0..<(width * Self.count) {
            state = state &* 1_664_525 &+ 1_013_904_223
            floats[i] = Float(Int32(bitPattern: state >> 8) - (1 << 23)) / Float(1 << 23)
        }
        for c in 0..<Self.count {
            valet_quantize_q16(floats + c * width, quantized + c * rowBytes, Int32(width))
        }
    }
}

func modelPath() -> String {
    if let env = ProcessInfo.processInfo.environment["VALET_BENCH_MODEL"], !env.isEmpty { return env }
    // package-benchmark runs from the Benchmarks/ package directory; the model lives in the main package.
    for candidate in ["../models/SmolLM2-135M-Instruct.Q4_1.gguf", "models/SmolLM2-135M-Instruct.Q4_1.gguf"]
    where FileManager.default.fileExists(atPath: candidate) {
        return candidate
    }
    return "../models/SmolLM2-135M-Instruct.Q4_1.gguf"
}

func configureDefaults() {
    let seconds = Double(ProcessInfo.processInfo.environment["VALET_BENCH_MAX_SECONDS"] ?? "") ?? 2
    Benchmark.defaultConfiguration = .init(
        // JMH export (how bench/run.py reads results) requires the throughput metric.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        maxDuration: .milliseconds(Int(seconds * 1000)),
        maxIterations: 100_000
    )
}

/// One kernel call: rows [0, rows) of `w` times `cols` columns.
@inline(__always)
func matmul(_ w: Weights, rows: Int, _ x: Columns, cols: Int, _ out: UnsafeMutablePointer<Float>) {
    let handled = valet_matmul_q16(w.type, w.base, w.rowBytes, w.blocksPerRow, 0, Int32(rows),
                                  x.quantized, x.rowBytes, Int32(cols), out, Int32(w.rows))
    precondition(handled != 0, "no kernel for GGML type \(w.type)")
}

let benchmarks: @Sendable () -> Void = {
    configureDefaults()
    let path = modelPath()
    guard let file = try? GGUFFile(path: path),
        let up = try? Weights(file, "blk.0.ffn_up.weight"),
        let down = try? Weights(file, "blk.0.ffn_down.weight"),
        let output = try? Weights(file, file.hasTensor("output.weight") ? "output.weight" : "token_embd.weight")
    else {
        print("KernelBenchmarks: model not found at \(path) (set VALET_BENCH_MODEL); skipping")
        return
    }
    let x576 = Columns(width: 576)
    let x1536 = Columns(width: 1536)
    let out = UnsafeMutablePointer<Float>.allocate(capacity: output.rows * Columns.count)
    let q16 = UnsafeMutableRawPointer.allocate(byteCount: valet_q16_row_bytes(576), alignment: 64)

    Benchmark("quantize activations to 16-bit blocks, 576 floats") { benchmark in
        for _ in benchmark.scaledIterations {
            valet_quantize_q16(x576.floats, q16, 576)
            blackHole(q16.load(as: Int16.self))
        }
    }
    Benchmark("dot Q4_1 x Q16, 1536 values (flops=\(2 * 1536))") { benchmark in
        for _ in benchmark.scaledIterations {
            matmul(down, rows: 1, x1536, cols: 1, out)
            blackHole(out.pointee)
        }
    }
    for cols in [1, 8] {
        let flops = 2 * up.rows * up.rowLength * cols
        Benchmark("matmul Q4_1 FFN up-projection \(up.rows)x\(up.rowLength) x \(cols) col (flops=\(flops))") { benchmark in
            for _ in benchmark.scaledIterations {
                matmul(up, rows: up.rows, x576, cols: cols, out)
                blackHole(out.pointee)
            }
        }
    }
    for cols in [1, 8] {
        let flops = 2 * output.rows * output.rowLength * cols
        Benchmark("matmul Q8_0 output projection \(output.rows)x\(output.rowLength) x \(cols) col (flops=\(flops))") {
            benchmark in
            for _ in benchmark.scaledIterations {
                matmul(output, rows: output.rows, x576, cols: cols, out)
                blackHole(out.pointee)
            }
        }
    }
}
