// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every Swift target (the swift-nio / Hummingbird habit).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The encoder's element-wise kernels are compiled for x86-64-v3 (AVX2 + FMA): measured about twice as
/// fast as the SSE2 baseline (GELU 0.72 vs 1.40 ns per element, exp 0.31 vs 0.56). Any x86-64 CPU
/// from 2013 on (Haswell, Zen) has these; other architectures get the compiler's defaults.
/// They are optimised in debug builds too: unoptimised, one MiniLM forward pass took seconds, which made
/// `swift test` slow and loaded the machine under the timing-sensitive integration tests.
let kernelSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(platforms: [.linux])),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

/// The dense scan kernel: AVX2 code generation (haswell, the x86-64-v3 level), optimised in debug builds too.
let vectorKernelSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux])),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

/// The dense scan's int4 loop once more for Zen 4 (AVX-512 with VNNI, 512-bit vectors preferred); called only on
/// a CPU that reports every extension that target may use.
let wideVectorKernelSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-target-cpu", "znver4"], .when(platforms: [.linux])),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
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
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        // Only for the MCP tests' FileDescriptor (the SDK depends on it already).
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // glibc's mallopt and malloc_trim (malloc.h), for the daemon's heap policy.
        .systemLibrary(name: "CMalloc"),
        // CPUID and XGETBV (which dense-scan loop this CPU can run) and a prefetch hint.
        .systemLibrary(name: "CCPU"),

        // Vocabulary: analyzer, stemmer, hashing, shared value types. No I/O.
        // Optimised in debug builds too: hashing the model weights and analysing text dominate test time otherwise.
        .target(name: "RagCore", swiftSettings: swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Wire types of the newline-delimited JSON protocol.
        .target(name: "RagProtocol", swiftSettings: swiftSettings),
        // The TOML configuration file, with line-accurate errors.
        .target(name: "RagConfig", dependencies: ["RagCore"], swiftSettings: swiftSettings),
        // LMDB environment, schema and the atomic per-file writer.
        .target(name: "RagStore", dependencies: ["RagCore", "CLMDB", "RagVectorKernels"], swiftSettings: swiftSettings),
        // gzip decompression with a bound on the output (gzipped documents).
        .target(name: "RagGzip", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        // File reading, chunking, scanning and reconciliation.
        .target(name: "RagIngest", dependencies: [
            "RagCore", "RagStore", "RagGzip",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ], swiftSettings: swiftSettings),
        // BM25 retrieval over the store.
        .target(name: "RagVectorKernelsAVX512", swiftSettings: wideVectorKernelSettings),
        .target(name: "RagVectorKernels", dependencies: ["RagVectorKernelsAVX512", "CCPU"], swiftSettings: vectorKernelSettings),
        .target(name: "RagQuery", dependencies: ["RagCore", "RagStore", "RagVectorKernels", "CCPU"], swiftSettings: swiftSettings),
        // Unix-socket server: framing, dispatch, replies.
        .target(name: "RagServer", dependencies: [
            "RagCore", "RagProtocol", "RagQuery", "RagStore", "RagGzip",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ], swiftSettings: swiftSettings),
        // sd_notify, sd_listen_fds, the watchdog and the journal.
        .target(name: "RagSystemd", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // Vectorised softmax, GELU, LayerNorm and row kernels of the sentence encoder.
        .target(name: "RagEmbedKernels", swiftSettings: kernelSettings),
        // In-process sentence encoder: safetensors, WordPiece tokenizer, BERT on OpenBLAS; BertEmbedder.
        .target(name: "RagEmbed", dependencies: ["RagCore", "CBLAS", "RagEmbedKernels"], swiftSettings: swiftSettings),
        // Helpers for tests only.
        .target(name: "RagTestSupport", dependencies: ["RagCore", "CZlib"], swiftSettings: swiftSettings),

        .executableTarget(name: "ragd", dependencies: [
            "RagCore", "RagConfig", "RagStore", "RagIngest", "RagQuery", "RagServer", "RagSystemd", "RagProtocol", "RagEmbed", "CMalloc",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: swiftSettings),
        // Speed of the sentence encoder (bench/embed_bench.sh).
        .executableTarget(name: "embed-bench", dependencies: ["RagCore", "RagEmbed"], swiftSettings: swiftSettings),
        // The CLI; `ragctl mcp` also links the MCP SDK (stdio server).
        .executableTarget(name: "ragctl", dependencies: [
            "RagCore", "RagProtocol",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "MCP", package: "swift-sdk"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),

        // Dense and hybrid query latency at scale (bench/, not installed).
        .executableTarget(name: "dense-bench", dependencies: ["RagCore", "RagStore", "RagQuery", "RagEmbed"], swiftSettings: swiftSettings),

        .testTarget(name: "RagCoreTests", dependencies: ["RagCore"], resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "RagProtocolTests", dependencies: ["RagProtocol"], swiftSettings: swiftSettings),
        .testTarget(name: "RagConfigTests", dependencies: ["RagConfig", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagStoreTests", dependencies: ["RagStore", "RagVectorKernels", "RagVectorKernelsAVX512", "RagTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RagIngestTests", dependencies: ["RagIngest", "RagStore", "RagGzip", "RagTestSupport", .product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),
        .testTarget(name: "RagEmbedTests", dependencies: ["RagEmbed", "RagEmbedKernels", "RagCore"], resources: [.copy("Fixtures")], swiftSettings: swiftSettings),
        .testTarget(name: "RagQueryTests", dependencies: ["RagQuery", "RagStore", "RagIngest", "RagTestSupport", .product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),
        .testTarget(name: "RagSystemdTests", dependencies: [
            "RagSystemd",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "IntegrationTests", dependencies: [
            "RagCore", "RagProtocol", "RagTestSupport",
            .product(name: "MCP", package: "swift-sdk"),
            .product(name: "SystemPackage", package: "swift-system"),
        ], exclude: ["Fixtures"], swiftSettings: swiftSettings),
    ]
)
