// swift-tools-version: 6.2
// Valet's benchmarks, a package of their own so the main package's CI build stays lean: package-benchmark
// micro-benchmarks (Benchmarks/<Name>/) plus two timing executables `make bench` folds into its report.
import PackageDescription

let benchmark: Target.Dependency = .product(name: "Benchmark", package: "benchmark")
let benchmarkPlugin: Target.PluginUsage = .plugin(name: "BenchmarkPlugin", package: "benchmark")

let package = Package(
    name: "ValetBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "valet-lockbench", targets: ["LockBench"]),
        .executable(name: "valet-recorderbench", targets: ["RecorderBench"]),
    ],
    dependencies: [
        .package(name: "Valet", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Lock suite: custom timing (T threads on one lock for a fixed time), JSON out for bench/run.py.
        .executableTarget(
            name: "LockBench",
            dependencies: [.product(name: "Locks", package: "Valet")],
            path: "Sources/LockBench"
        ),
        // Recorder throughput: job rows/s through the real Recorder into a real SQLite file.
        .executableTarget(
            name: "RecorderBench",
            dependencies: [.product(name: "ValetMetrics", package: "Valet")],
            path: "Sources/RecorderBench"
        ),
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                benchmark,
                .product(name: "Inference", package: "Valet"),
                .product(name: "CKernels", package: "Valet"),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [benchmarkPlugin]
        ),
        .executableTarget(
            name: "TokenizerBenchmarks",
            dependencies: [benchmark, .product(name: "Inference", package: "Valet")],
            path: "Benchmarks/TokenizerBenchmarks",
            plugins: [benchmarkPlugin]
        ),
        .executableTarget(
            name: "ExpositionBenchmarks",
            dependencies: [benchmark, .product(name: "ValetMetrics", package: "Valet")],
            path: "Benchmarks/ExpositionBenchmarks",
            plugins: [benchmarkPlugin]
        ),
        .executableTarget(
            name: "APIBenchmarks",
            dependencies: [benchmark, .product(name: "OpenAIAPI", package: "Valet")],
            path: "Benchmarks/APIBenchmarks",
            plugins: [benchmarkPlugin]
        ),
    ],
    swiftLanguageModes: [.v6]
)
