// swift-tools-version: 6.3
import PackageDescription

// The engine benchmarks (package-benchmark), kept out of the main package's build:
//   cd Benchmarks && swift package --allow-writing-to-directory /tmp benchmark
// Graphs of 1k, 100k and 1M users are generated once into $PIAM_BENCH_DIR (default /tmp) and
// reused; PIAM_BENCH_SIZES=1k,100k limits the sizes.
let package = Package(
    name: "PIAMBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "piam", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PIAMEngineBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PIAMEngine", package: "piam"),
                .product(name: "PIAMStore", package: "piam"),
                .product(name: "PIAMDemo", package: "piam"),
            ],
            path: "Benchmarks/PIAMEngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
