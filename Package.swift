// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "kt-swift-sdk",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "KTCore", targets: ["KTCore"]),
        .library(name: "KTConfig", targets: ["KTConfig"]),
        .library(name: "KTDB", targets: ["KTDB"]),
        .library(name: "KTQdrant", targets: ["KTQdrant"]),
        .library(name: "KTGraph", targets: ["KTGraph"]),
        .library(name: "KTProvision", targets: ["KTProvision"]),
        .executable(name: "kt", targets: ["KTCLI"]),
        .executable(name: "kt-server", targets: ["KTServer"]),
        .executable(name: "kt-benchmarks", targets: ["KTBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // MARK: C shim
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        .target(
            name: "CKTCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),

        // MARK: SDK modules
        .target(name: "KTCore"),
        .target(
            name: "KTConfig",
            dependencies: [
                "KTCore",
                "KTDB",
                "KTQdrant",
                "KTGraph",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "KTDB",
            dependencies: [
                "KTCore",
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "KTQdrant",
            dependencies: [
                "KTCore",
                "CKTCurl",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "KTGraph",
            dependencies: [
                "KTCore",
                "KTDB",
                "KTQdrant",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "KTProvision",
            dependencies: [
                "KTCore",
                "KTConfig",
                "KTDB",
                "KTQdrant",
                "KTGraph",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // MARK: Examples (use only the public SDK API)
        .executableTarget(
            name: "KTCLI",
            dependencies: [
                "KTCore",
                "KTConfig",
                "KTDB",
                "KTGraph",
                "KTQdrant",
                "KTProvision",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/KTCLI"
        ),
        .target(
            name: "KTServerKit",
            dependencies: [
                "KTCore",
                "KTConfig",
                "KTDB",
                "KTQdrant",
                "KTGraph",
                "KTProvision",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            path: "Examples/KTServerKit",
            resources: [.copy("openapi.json")]
        ),
        .executableTarget(
            name: "KTServer",
            dependencies: [
                "KTServerKit",
                "KTCore",
                "KTConfig",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/KTServer"
        ),

        // MARK: Benchmarks
        .executableTarget(
            name: "KTBenchmarks",
            dependencies: [
                "KTCore",
                "KTConfig",
                "KTDB",
                "KTGraph",
                "KTQdrant",
                "KTProvision",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/KTBenchmarks"
        ),

        // MARK: Tests
        .testTarget(
            name: "KTConfigTests",
            dependencies: ["KTConfig", "KTCore", "KTDB", "KTQdrant", "KTGraph"]
        ),
        .testTarget(
            name: "KTDBTests",
            dependencies: ["KTDB", "KTCore"]
        ),
        .testTarget(
            name: "KTQdrantTests",
            dependencies: ["KTQdrant", "KTCore", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "KTGraphTests",
            dependencies: ["KTGraph"]
        ),
        .testTarget(
            name: "KTProvisionTests",
            dependencies: ["KTProvision", "KTDB"]
        ),
        .testTarget(
            name: "KTIntegrationTests",
            dependencies: [
                "KTCore",
                "KTDB",
                "KTConfig",
                "KTQdrant",
                "KTProvision",
                "KTGraph",
                "KTServerKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system && target.name != "CKTCurl" {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ])
    target.swiftSettings = settings
}
