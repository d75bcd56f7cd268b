// swift-tools-version: 6.0
import PackageDescription

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "piam",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PIAMEngine", targets: ["PIAMEngine"]),
        .library(name: "PIAMStore", targets: ["PIAMStore"]),
        .library(name: "PIAMWire", targets: ["PIAMWire"]),
        .library(name: "PIAMClient", targets: ["PIAMClient"]),
        .library(name: "PIAMServer", targets: ["PIAMServer"]),
        // Generated graphs and request mixes, for the Benchmarks/ package.
        .library(name: "PIAMDemo", targets: ["PIAMDemo"]),
        .executable(name: "piamctl", targets: ["piamctl"]),
        .executable(name: "piamd", targets: ["piamd"]),
        .executable(name: "piam-bench", targets: ["piam-bench"]),
        .executable(name: "piam-admind", targets: ["piam-admind"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // The decision engine: pure Swift, no I/O, no Foundation, no NIO, no SQLite.
        .target(name: "PIAMEngine"),
        // libsqlite3 through pkg-config, plus a shim of static inline helpers.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // libsystemd: sd_notify, sd_listen_fds_with_names, sd_watchdog_enabled.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // The SQLite store: schema, migrations, change journal, import/export, loader, demo data.
        // (swift-crypto: SHA-256 of API tokens and invitation secrets, which the database keeps
        // instead of the secrets.)
        .target(
            name: "PIAMStore",
            dependencies: ["PIAMEngine", "CSQLite", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Realistic demo databases and large generated graphs of the same shape.
        .target(name: "PIAMDemo", dependencies: ["PIAMEngine", "PIAMStore"]),
        // Wire protocol v1: frames, requests, responses (PROTOCOL.md), on NIO's ByteBuffer.
        .target(name: "PIAMWire", dependencies: ["PIAMEngine", nioCore]),
        // The Swift client: one pipelining connection to piamd, async API.
        .target(name: "PIAMClient", dependencies: ["PIAMWire", "PIAMEngine", nioCore, nioPosix]),
        // The daemon's library: configuration, graph holder, socket server, systemd, services.
        .target(
            name: "PIAMServer",
            dependencies: [
                "PIAMWire", "PIAMEngine", "PIAMStore", "CSystemd", nioCore, nioPosix,
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The daemon executable: argument parsing only; everything else is PIAMServer.
        .executableTarget(name: "piamd", dependencies: ["PIAMServer", argumentParser]),
        // The administration service's library: the live graph and its O(change) writes,
        // authentication (trusted header, JWT, API tokens) and the HTTP API on Hummingbird.
        .target(
            name: "PIAMAdmin",
            dependencies: [
                "PIAMEngine", "PIAMStore", "PIAMServer", nioCore, nioPosix,
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The consoles' HTML templates (escaping by default).
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
            ]
        ),
        // The administration daemon: argument parsing only; everything else is PIAMAdmin.
        .executableTarget(
            name: "piam-admind",
            dependencies: ["PIAMAdmin", "PIAMEngine", argumentParser, .product(name: "Logging", package: "swift-log")]
        ),
        // The administration and query CLI.
        .executableTarget(
            name: "piamctl",
            dependencies: ["PIAMEngine", "PIAMStore", "PIAMDemo", "PIAMClient", argumentParser]
        ),
        // Scale measurements of the foundation (import, load, peak RSS, in-process check).
        .executableTarget(
            name: "piam-scale",
            dependencies: ["PIAMEngine", "PIAMStore", "PIAMDemo", "PIAMClient", "PIAMWire", "PIAMServer", argumentParser]
        ),
        // The load generator: PIAM against an echo server and Redis on the same kind of socket.
        .executableTarget(
            name: "piam-bench",
            dependencies: [
                "PIAMEngine", "PIAMStore", "PIAMDemo", "PIAMWire", nioCore, nioPosix, argumentParser,
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "PIAMEngineTests", dependencies: ["PIAMEngine"]),
        .testTarget(name: "PIAMStoreTests", dependencies: ["PIAMStore", "PIAMEngine", "PIAMDemo"]),
        .testTarget(
            name: "PIAMWireTests",
            dependencies: [
                "PIAMWire", "PIAMEngine", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        // The daemon's library in process: the connection's state machine and handlers on
        // EmbeddedChannel, configuration, the rate-limited log.
        .testTarget(
            name: "PIAMServerTests",
            dependencies: [
                "PIAMServer", "PIAMWire", "PIAMEngine", "PIAMStore", "PIAMDemo", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "PiamctlTests", dependencies: ["PIAMStore", "PIAMEngine"]),
        // The administration service in process (Hummingbird's test client) and its parts.
        .testTarget(
            name: "PIAMAdminTests",
            dependencies: [
                "PIAMAdmin", "PIAMStore", "PIAMEngine", "PIAMDemo",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(name: "PiamBenchTests", dependencies: ["PIAMStore", "PIAMDemo", "PIAMEngine"]),
        .testTarget(
            name: "PiamdTests",
            dependencies: [
                "PIAMClient", "PIAMWire", "PIAMStore", "PIAMEngine", "PIAMDemo", "PIAMAdmin", nioCore,
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
