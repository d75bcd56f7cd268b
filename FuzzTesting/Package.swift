// swift-tools-version: 6.0
// libFuzzer targets for PIAM's parsers (the pattern of swift-nio-http2's and swift-protobuf's
// FuzzTesting/ packages): a nested package so the main build never sees the sanitizers.
//
//   swift build -c debug --sanitize=fuzzer --sanitize=address
//   SWIFT_BACKTRACE=enable=no .build/debug/FuzzWire -dict=Dictionaries/wire.dict Corpus/FuzzWire
//
// `run.sh` runs every target (bounded, as CI does, or for hours); see README.md.
import PackageDescription

let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "piam", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // The tiny graph and helpers every target answers from.
        .target(
            name: "FuzzCommon",
            dependencies: [.product(name: "PIAMEngine", package: "piam")]
        ),
        // Frame decoder (every chunking) + request parser: the fast path and the general path
        // must agree byte for byte; decode → encode → decode is stable.
        .executableTarget(
            name: "FuzzWire",
            dependencies: [
                "FuzzCommon",
                .product(name: "PIAMWire", package: "piam"), .product(name: "PIAMEngine", package: "piam"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // The AuthZEN JSON decoder behind the HTTP face's POST endpoints.
        .executableTarget(
            name: "FuzzAuthZEN",
            dependencies: [
                "FuzzCommon",
                .product(name: "PIAMServer", package: "piam"), .product(name: "PIAMEngine", package: "piam"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The forward-auth route matcher: route tables and original requests.
        .executableTarget(
            name: "FuzzForwardAuth",
            dependencies: [
                "FuzzCommon",
                .product(name: "PIAMServer", package: "piam"), .product(name: "PIAMEngine", package: "piam"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The HTTP face's fast path on piamd's connection pipeline, next to the same pipeline
        // without it: well-formed answers, and the whole connection's output byte for byte the
        // general path's.
        .executableTarget(
            name: "FuzzHTTPFastPath",
            dependencies: [
                "FuzzCommon",
                .product(name: "PIAMServer", package: "piam"), .product(name: "PIAMEngine", package: "piam"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The import document parser and validator, and the `piamctl apply` file parser.
        .executableTarget(
            name: "FuzzImport",
            dependencies: [.product(name: "PIAMStore", package: "piam"), .product(name: "PIAMEngine", package: "piam")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
