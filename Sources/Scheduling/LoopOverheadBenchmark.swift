// What the engine loop itself costs per decode step, with the prefix cache on and off: one stream decoding against
// an engine that computes nothing, so the scheduler's bookkeeping is all that is timed.
import Foundation
import Inference
import Locks

public struct LoopOverheadBenchmark: Sendable {
    public struct Result: Sendable {
        /// Seconds per decode step of each repetition, cache on and off, in the order they ran.
        public var on: [Double] = []
        public var off: [Double] = []
    }

    public var tokens: Int
    public var repetitions: Int
    /// Blocks the cache holds before timing (from other prompts), so lookups and eviction see a full index.
    public var cachedBlocks: Int

    public init(tokens: Int = 2048, repetitions: Int = 5, cachedBlocks: Int = 2048) {
        self.tokens = tokens
        self.repetitions = repetitions
        self.cachedBlocks = cachedBlocks
    }

    /// Alternates on, off, off, on, … so drift in the host's speed falls on both.
    public func run() -> Result {
        var result = Result()
        for r in 0..<repetitions {
            for cache in (r % 2 == 0 ? [true, false] : [false, true]) {
                let seconds = perStep(cache: cache, seed: UInt64(r))
                if cache { result.on.append(seconds) } else { result.off.append(seconds) }
            }
        }
        return result
    }

    private func perStep(cache: Bool, seed: UInt64) -> Double {
        let engine = NullEngine(blocks: cachedBlocks + tokens / 16 + 64)
        let scheduler = Scheduler(
            config: SchedulerConfig(prefixCache: cache, modelIdentity: "loop-overhead"), engine: engine,
            decoder: NullEngine.Decoder())
        scheduler.start()
        defer { scheduler.shutdown(grace: 0) }
        var rng = Xoshiro256(seed: seed)
        func prompt(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % 60) } }
        // Fill the cache with other prompts' blocks (each job leaves its blocks behind).
        for i in 0..<(cachedBlocks / 64) { Self.runOne(scheduler, id: "fill-\(i)", prompt: prompt(64 * 16), max: 1) }
        let start = Self.runOne(scheduler, id: "timed", prompt: prompt(200), max: tokens)
        return start / Double(tokens)
    }

    /// Runs one job to its end; returns the seconds from its first token to its last.
    @discardableResult
    private static func runOne(_ scheduler: Scheduler, id: String, prompt: [Int32], max: Int) -> Double {
        var sampling = SamplingParameters()
        sampling.temperature = 0
        let times = Locked<(first: Double?, last: Double)>((nil, 0))
        let done = DispatchSemaphore(value: 0)
        let request = GenerationRequest(id: id, model: "loop-overhead", promptTokens: prompt, maxTokens: max,
                                        sampling: sampling)
        let submission = scheduler.submit(request) { event in
            switch event {
            case .token:
                let now = ProcessInfo.processInfo.systemUptime
                times.withLock { t in
                    if t.first == nil { t.first = now }
                    t.last = now
                }
            case .finished, .failed:
                done.signal()
            default:
                break
            }
        }
        guard submission.handle != nil else { return 0 }
        done.wait()
        return times.withLock { t in t.last - (t.first ?? t.last) }
    }
}

/// An engine that returns the same small logits row for every request: no model, no KV.
private final class NullEngine: StepEngine {
    let vocabSize = 64
    let blockSize = 16
    let totalBlocks: Int
    let contextLength = 1 << 20

    init(blocks: Int) { totalBlocks = blocks }

    struct Decoder: TokenDecoding {
        var endOfGenerationTokens: Set<Int32> { [] }
        func bytes(of token: Int32) -> [UInt8] { [UInt8(ascii: "a") + UInt8(Int(token) % 26)] }
    }

    func copyRows(from source: Int32, to destination: Int32, tokens: Int) {}

    func step(_ batch: [StepSequence], emit: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws {
        var row = [Float](repeating: 0, count: vocabSize)
        row[7] = 1
        for (i, s) in batch.enumerated() where s.logits != .none {
            row.withUnsafeMutableBufferPointer { emit(i, s.tokens.count - 1, $0) }
        }
    }
}
