// swift-tools-version: 6.2
// Valet: a Swift-native LLM inference microservice (engine, parking-lot scheduler, metrics, OpenAI HTTP API).
import PackageDescription

let package = Package(
    name: "Valet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "valet", targets: ["Service"]),
        // Libraries so the separate Benchmarks/ package can link the real engine, kernels and metrics.
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "CKernels", targets: ["CKernels"]),
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
        // Quantized SIMD kernels; kept tiny, wrapped by Inference/Kernels.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        .target(
            name: "Inference",
            // ValetMetrics only for InstrumentedLock: the engine never touches SQLite or Prometheus.
            dependencies: ["CKernels", "ValetMetrics"]
        ),
        // Named ValetMetrics because swift-metrics already owns a target called Metrics.
        .target(
            name: "ValetMetrics",
            dependencies: [
                "CSQLite",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Metrics"
        ),
        .executableTarget(
            name: "Service",
            dependencies: [
                "CHttpd",
                "Inference",
                "ValetMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildRevision"]
        ),
        .plugin(name: "BuildRevision", capability: .buildTool()),
        .testTarget(name: "InferenceTests", dependencies: ["Inference"]),
        .testTarget(name: "MetricsTests", dependencies: ["ValetMetrics"]),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "Inference", "ValetMetrics"]),
    ],
    swiftLanguageModes: [.v6]
)
