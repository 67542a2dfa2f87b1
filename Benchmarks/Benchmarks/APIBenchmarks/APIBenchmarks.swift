// package-benchmark micro-benchmarks of JSON request decoding: the service's own validating decoder
// (RequestDecoder) on a typical chat request, a long multi-turn one and a completions request.
import Benchmark
import Foundation
import OpenAIAPI

func configureDefaults() {
    let seconds = Double(ProcessInfo.processInfo.environment["VALET_BENCH_MAX_SECONDS"] ?? "") ?? 2
    Benchmark.defaultConfiguration = .init(
        // JMH export (how bench/run.py reads results) requires the throughput metric.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        maxDuration: .milliseconds(Int(seconds * 1000)),
        maxIterations: 1_000_000
    )
}

func json(_ object: [String: Any]) -> [UInt8] {
    Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
}

let typicalChat = json([
    "model": "SmolLM2-135M-Instruct.Q4_1",
    "messages": [
        ["role": "system", "content": "You are a helpful assistant. Answer in one short paragraph."],
        ["role": "user", "content": "Which planet is known as the Red Planet, and why is it red?"],
    ],
    "max_tokens": 128, "temperature": 0.7, "top_p": 0.95, "seed": 42, "stream": true,
    "stream_options": ["include_usage": true], "stop": ["\n\n", "User:"], "priority": "high",
])

let longChat: [UInt8] = {
    var messages: [[String: Any]] = [["role": "system", "content": "You are a careful, concise assistant."]]
    let turn = "Here is some more context about the project, its goals, the people involved and the schedule. "
    for i in 0..<40 {
        messages.append(["role": i % 2 == 0 ? "user" : "assistant",
                         "content": String(repeating: turn, count: 4) + "Turn \(i): what comes next?"])
    }
    return json(["model": "SmolLM2-135M-Instruct.Q4_1", "messages": messages, "max_tokens": 256,
                 "logprobs": true, "top_logprobs": 5, "logit_bias": ["123": -100, "456": 5]])
}()

let completion = json([
    "model": "SmolLM2-135M-Instruct.Q4_1",
    "prompt": "The quick brown fox jumps over the lazy dog. Once upon a time, in a village by the river,",
    "max_tokens": 64, "temperature": 0, "logprobs": 2, "echo": false, "n": 1,
])

let benchmarks: @Sendable () -> Void = {
    configureDefaults()
    let limits = RequestDecoder.Limits(vocabularySize: 49_152)
    // Fail loudly if a body stopped being valid: timing an error path would measure the wrong thing.
    _ = try! RequestDecoder.decodeChat(typicalChat, limits: limits)
    _ = try! RequestDecoder.decodeChat(longChat, limits: limits)
    _ = try! RequestDecoder.decodeCompletion(completion, limits: limits)

    Benchmark("decode chat request, typical (bytes=\(typicalChat.count))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RequestDecoder.decodeChat(typicalChat, limits: limits))
        }
    }
    Benchmark("decode chat request, 41 messages (bytes=\(longChat.count))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RequestDecoder.decodeChat(longChat, limits: limits))
        }
    }
    Benchmark("decode completions request (bytes=\(completion.count))") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RequestDecoder.decodeCompletion(completion, limits: limits))
        }
    }
}
