// Engine throughput as llama-bench measures it (prompt processing, token generation), plus the aggregate
// generation rate of B sequences decoding together; shared by `valet bench` and `make bench`.
import Foundation

public struct EngineBenchmark: Sendable {
    public var modelPath: String
    public var threads: Int
    public var promptTokens: Int
    public var generatedTokens: Int
    public var batch: Int
    public var repetitions: Int

    public init(modelPath: String, threads: Int, promptTokens: Int = 512, generatedTokens: Int = 128, batch: Int = 1,
                repetitions: Int = 5)
    {
        self.modelPath = modelPath
        self.threads = threads
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.batch = batch
        self.repetitions = repetitions
    }

    /// Tokens per second of each repetition, with the summary llama-bench prints.
    public struct Rate: Sendable {
        public var name: String
        public var samples: [Double]
        /// Process CPU seconds per wall second over the test: on a shared machine, how many cores it really had.
        public var cpuShare: Double = 0
        public var median: Double {
            let s = samples.sorted()
            return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        public var min: Double { samples.min() ?? 0 }
        public var max: Double { samples.max() ?? 0 }
    }

    public struct Report: Sendable {
        public var modelName: String
        public var modelBytes: Int
        public var kvCacheBytes: Int
        public var threads: Int
        public var rates: [Rate]
        /// Aggregate batched rate over the single-sequence rate, one sample per repetition (the two ran back to back).
        public var batchRatio: Rate?
        public var peakRSSBytes: Int

        /// The memory bound: model file + KV cache + 64 MiB.
        public var rssLimitBytes: Int { modelBytes + kvCacheBytes + 64 << 20 }

        public var text: String {
            func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
            var lines = ["| model | size | threads | test | t/s (median) | min – max | CPU cores used |",
                         "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]
            for r in rates {
                lines.append(String(format: "| %@ | %@ | %d | %@ | %.2f | %.2f – %.2f | %.2f |", modelName,
                                    mib(modelBytes), threads, r.name, r.median, r.min, r.max, r.cpuShare))
            }
            if let r = batchRatio {
                lines.append(String(format: "batch %@ (paired by repetition): median %.2f×, min – max %.2f – %.2f", r.name,
                                    r.median, r.min, r.max))
            }
            lines.append("peak RSS \(mib(peakRSSBytes)) (limit: model \(mib(modelBytes)) + KV cache \(mib(kvCacheBytes)) "
                + "+ 64 MiB = \(mib(rssLimitBytes)))")
            return lines.joined(separator: "\n")
        }
    }

    /// Runs the benchmark; `progress` receives a line per finished test.
    public func run(progress: (String) -> Void = { _ in }) throws -> Report {
        guard promptTokens >= 0, generatedTokens >= 0, batch >= 1, repetitions >= 1, threads >= 1 else {
            throw EngineError("bench: counts must be positive (threads, batch and repetitions at least 1)")
        }
        let file = try GGUFFile(path: modelPath)
        let perSequence = max(promptTokens, generatedTokens, 1)
        let blocksPerSequence = (perSequence + KVBlockPool.blockSize - 1) / KVBlockPool.blockSize
        let engine = try LlamaEngine(model: file, threads: threads,
                                     kvCacheTokens: blocksPerSequence * KVBlockPool.blockSize * batch)
        guard perSequence <= engine.contextLength else {
            throw EngineError("bench: \(perSequence) tokens exceed the model's context length \(engine.contextLength)")
        }
        let vocab = Int32(engine.vocabSize)
        var rng = SystemRandomNumberGenerator()
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32.random(in: 0..<vocab, using: &rng) } }
        func table(_ sequence: Int) -> [Int32] {
            (0..<blocksPerSequence).map { Int32(sequence * blocksPerSequence + $0) }
        }

        // Warm-up: fault in the weights and spin up the workers, as llama-bench does before measuring.
        try engine.step([StepSequence(blockTable: table(0), position: 0, tokens: randomTokens(min(32, perSequence)),
                                      logits: .last)]) { _, _, _ in }

        var rates: [Rate] = []
        if promptTokens > 0 {
            var r = Rate(name: "pp\(promptTokens)", samples: [])
            let usage = CPUUsage()
            for _ in 0..<repetitions {
                let tokens = randomTokens(promptTokens)
                let seconds = try time {
                    try engine.step([StepSequence(blockTable: table(0), position: 0, tokens: tokens, logits: .last)]) { _, _, _ in }
                }
                r.samples.append(Double(promptTokens) / seconds)
            }
            r.cpuShare = usage.share()
            progress(String(format: "pp%d: %.2f t/s", promptTokens, r.median))
            rates.append(r)
        }
        var batchRatios: [Double] = []
        if generatedTokens > 0 {
            // Single and batched decoding take turns (1, B, B, 1, …) so both see the same machine: on a shared host
            // the memory-bound single sequence swings far more than the compute-bound batch, and a ratio of medians
            // taken minutes apart measures the host as much as the engine.
            let widths = Array(Set([1, batch])).sorted()
            var byWidth = widths.map { width in
                Rate(name: width == 1 ? "tg\(generatedTokens)" : "tg\(generatedTokens) ×\(width) aggregate", samples: [])
            }
            var cpu = [Double](repeating: 0, count: widths.count), wall = cpu
            for rep in 0..<repetitions {
                for i in rep % 2 == 0 ? Array(widths.indices) : widths.indices.reversed() {
                    let width = widths[i]
                    var next = randomTokens(width)
                    let cpu0 = CPUUsage.processSeconds()
                    let seconds = try time {
                        for position in 0..<generatedTokens {
                            let batch = (0..<width).map {
                                StepSequence(blockTable: table($0), position: position, tokens: [next[$0]], logits: .last)
                            }
                            // Greedy choice keeps the work identical to real decoding (the logits are read).
                            try engine.step(batch) { s, _, row in next[s] = Int32(argmax(row)) }
                        }
                    }
                    cpu[i] += CPUUsage.processSeconds() - cpu0
                    wall[i] += seconds
                    byWidth[i].samples.append(Double(generatedTokens * width) / seconds)
                }
                if widths.count == 2 { batchRatios.append(byWidth[1].samples[rep] / byWidth[0].samples[rep]) }
            }
            for i in widths.indices {
                byWidth[i].cpuShare = wall[i] > 0 ? cpu[i] / wall[i] : 0
                progress(String(format: "%@: %.2f t/s", byWidth[i].name, byWidth[i].median))
            }
            rates += byWidth
        }
        return Report(modelName: URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent,
                      modelBytes: file.fileSize, kvCacheBytes: engine.cache.blockCount * engine.cache.bytesPerBlock,
                      threads: engine.model.pool.threadCount, rates: rates,
                      batchRatio: batchRatios.isEmpty ? nil : Rate(name: "×\(batch) ÷ ×1", samples: batchRatios),
                      peakRSSBytes: Self.peakRSS())
    }

    private func time(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Peak resident set size (VmHWM) of this process, from /proc.
    public static func peakRSS() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
        }
        return 0
    }
}

/// CPU time of the whole process against wall time since creation.
private struct CPUUsage {
    let wall = DispatchTime.now().uptimeNanoseconds
    let cpu = CPUUsage.processSeconds()

    func share() -> Double {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - wall) / 1e9
        return elapsed > 0 ? (Self.processSeconds() - cpu) / elapsed : 0
    }

    static func processSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}

private func argmax(_ row: UnsafeMutableBufferPointer<Float>) -> Int {
    var best = 0
    for i in 1..<row.count where row[i] > row[best] { best = i }
    return best
}
