// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every Swift target (the swift-nio / Hummingbird habit).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ragd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ragd", targets: ["ragd"]),
        .executable(name: "ragctl", targets: ["ragctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // Vocabulary: analyzer, stemmer, hashing, shared value types. No I/O.
        .target(name: "RagCore", swiftSettings: swiftSettings),
        // Wire types of the newline-delimited JSON protocol (ragctl links only this and RagCore).
        .target(name: "RagProtocol", swiftSettings: swiftSettings),
        // The TOML configuration file, with line-accurate errors.
        .target(name: "RagConfig", dependencies: ["RagCore"], swiftSettings: swiftSettings),
        // LMDB environment, schema and the atomic per-file writer.
        .target(name: "RagStore", dependencies: ["RagCore", "CLMDB"], swiftSettings: swiftSettings),
        // File reading, chunking, scanning and reconciliation.
        .target(name: "RagIngest", dependencies: [
            "RagCore", "RagStore",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        // BM25 retrieval over the store.
        .target(name: "RagQuery", dependencies: ["RagCore", "RagStore"], swiftSettings: swiftSettings),
        // Unix-socket server: framing, dispatch, replies.
        .target(name: "RagServer", dependencies: [
            "RagCore", "RagProtocol", "RagQuery", "RagStore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // sd_notify, sd_listen_fds, the watchdog and the journal.
        .target(name: "RagSystemd", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // Helpers for tests only.
        .target(name: "RagTestSupport", dependencies: ["RagCore"], swiftSettings: swiftSettings),

        .executableTarget(name: "ragd", dependencies: [
            "RagCore", "RagConfig", "RagStore", "RagIngest", "RagQuery", "RagServer", "RagSystemd", "RagProtocol",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: swiftSettings),
        .executableTarget(name: "ragctl", dependencies: [
            "RagCore", "RagProtocol",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swiftSettings),

        .testTarget(name: "RagCoreTests", dependencies: ["RagCore"], resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "RagProtocolTests", dependencies: ["RagProtocol"], swiftSettings: swiftSettings),
        .testTarget(name: "RagConfigTests", dependencies: ["RagConfig", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagStoreTests", dependencies: ["RagStore", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagIngestTests", dependencies: ["RagIngest", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagQueryTests", dependencies: ["RagQuery", "RagStore", "RagIngest", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagSystemdTests", dependencies: [
            "RagSystemd",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "IntegrationTests", dependencies: ["RagProtocol", "RagTestSupport"], swiftSettings: swiftSettings),
    ]
)
