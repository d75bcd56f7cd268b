// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "piam",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PIAMEngine", targets: ["PIAMEngine"]),
        .library(name: "PIAMStore", targets: ["PIAMStore"]),
        .executable(name: "piamctl", targets: ["piamctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        // The SQLite store: schema, migrations, change journal, import/export, loader, demo data.
        .target(name: "PIAMStore", dependencies: ["PIAMEngine", "CSQLite"]),
        // Realistic demo databases and large generated graphs of the same shape.
        .target(name: "PIAMDemo", dependencies: ["PIAMEngine", "PIAMStore"]),
        // The administration and query CLI.
        .executableTarget(
            name: "piamctl",
            dependencies: [
                "PIAMEngine", "PIAMStore", "PIAMDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Scale measurements of the foundation (import, load, peak RSS, in-process check).
        .executableTarget(
            name: "piam-scale",
            dependencies: [
                "PIAMEngine", "PIAMStore", "PIAMDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "PIAMEngineTests", dependencies: ["PIAMEngine"]),
        .testTarget(name: "PIAMStoreTests", dependencies: ["PIAMStore", "PIAMEngine"]),
        .testTarget(name: "PiamctlTests", dependencies: ["PIAMStore", "PIAMEngine"]),
    ],
    swiftLanguageModes: [.v6]
)
