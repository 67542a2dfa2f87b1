// swift-tools-version: 6.2
// Valet: a Swift-native LLM inference microservice. Libraries at the seams (HTTP, the OpenAI wire format, scheduling,
// the model, locks, metrics) and a thin `valet` executable that wires them together.
import PackageDescription

let package = Package(
    name: "Valet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "valet", targets: ["valet"]),
        // Libraries, so the separate Benchmarks/ package links the very code `valet` runs.
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "OpenAIAPI", targets: ["OpenAIAPI"]),
        .library(name: "Scheduling", targets: ["Scheduling"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "CKernels", targets: ["CKernels"]),
        .library(name: "Locks", targets: ["Locks"]),
        .library(name: "ValetMetrics", targets: ["ValetMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CHttpd",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Requests in, responses and streams out, middleware, routing; knows nothing of OpenAI or models.
        .target(name: "HTTPServer", dependencies: ["CHttpd", "Locks"]),
        // The OpenAI wire format: decoding, validation, encoding, SSE, the n-choices run; talks to a backend protocol.
        .target(name: "OpenAIAPI", dependencies: ["HTTPServer", "Scheduling", "Inference", "Locks"]),
        // The job's life: admission policy, the lot, KV block accounting, the engine loop (plan, execute, apply).
        .target(name: "Scheduling", dependencies: ["Inference", "Locks"]),
        // The model and nothing else: GGUF, tokenizer, templates, forward pass, sampler, KV storage.
        .target(name: "Inference", dependencies: ["CKernels", "Locks"]),
        // Quantized SIMD kernels; kept small, wrapped by Inference/Kernels.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        // The project's mutex (Locked) and the instrumented lock with its wait statistics; every library locks through it.
        .target(name: "Locks"),
        // Named ValetMetrics because swift-metrics already owns a target called Metrics.
        .target(
            name: "ValetMetrics",
            dependencies: [
                "CSQLite",
                "Locks",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "valet",
            dependencies: [
                "HTTPServer",
                "OpenAIAPI",
                "Scheduling",
                "Inference",
                "ValetMetrics",
                "Locks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildRevision"]
        ),
        .plugin(name: "BuildRevision", capability: .buildTool()),
        // Shared by the test targets: where the default model is, a blocking loopback HTTP client for the tests
        // that check what goes on the wire, and a socket-free driver (router + middleware into a recording sink).
        .target(name: "TestSupport", dependencies: ["HTTPServer", "Locks"], path: "Tests/TestSupport"),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Locks", "TestSupport"]),
        .testTarget(name: "OpenAIAPITests", dependencies: ["OpenAIAPI", "HTTPServer", "Scheduling", "Inference", "Locks", "TestSupport"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling", "Inference", "Locks", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "CKernels", "TestSupport"]),
        .testTarget(name: "LocksTests", dependencies: ["Locks", "TestSupport"]),
        .testTarget(name: "ValetMetricsTests", dependencies: ["ValetMetrics", "Locks", "CSQLite", "TestSupport"]),
        .testTarget(name: "ValetTests", dependencies: ["valet", "OpenAIAPI", "HTTPServer", "Inference", "Locks", "TestSupport", "ValetMetrics"]),
    ],
    swiftLanguageModes: [.v6]
)
