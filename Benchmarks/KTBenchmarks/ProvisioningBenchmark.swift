import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// Provisioning one graph end to end (row, two schemas, two migration sets, three Qdrant
/// collections, activation), p50 and p95 over `count` graphs, next to the migrations applied;
/// then re-migrating all of them: an idempotent no-op, and one new migration (target p50 < 150 ms).
enum ProvisioningBenchmark {
    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String, count: Int, logger: Logger) async throws {
        var settings = Settings.benchmark(graphURL: graphURL, writeURL: writeURL, qdrantURL: qdrantURL)
        settings.graphPool = PoolSettings(size: 2, maxOverflow: 0, timeout: .seconds(30), recycle: .seconds(3600))
        try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-bench"), logger: logger) { system in
            _ = try await system.prepare()
            try await measure(system.provisioner, count: count, graphURL: graphURL, logger: logger)
        }
    }

    private static func measure(_ provisioner: GraphProvisioner, count: Int, graphURL: DatabaseURL, logger: Logger) async throws {
        let prefix = "bench_\(UInt16.random(in: 0...UInt16.max))"
        var timings: [Double] = []
        var slugs: [String] = []
        let steps = StepClock()
        for index in 0..<count {
            let slug = "\(prefix)_\(index)"
            let start = ContinuousClock.now
            try await provisioner.createGraph(slug: slug, name: "Bench \(index)", progress: steps.record)
            timings.append(QdrantBenchmark.microseconds(ContinuousClock.now - start) / 1000)
            slugs.append(slug)
        }
        timings.sort()
        let p50 = timings[timings.count / 2]
        let p95 = timings[min(timings.count - 1, Int(Double(timings.count) * 0.95))]
        let migrations = MigrationSet.graphData.migrations.count + MigrationSet.writeData.migrations.count

        let extra = MigrationSet(name: "bench-extra", migrations: [Migration(version: 1, name: "bench_column", sql: "ALTER TABLE nodes ADD COLUMN bench_note text")])
        let noop = try await remigrate(slugs, sets: [.graphData], graphURL: graphURL, logger: logger)
        let oneNew = try await remigrate(slugs, sets: [.graphData, extra], graphURL: graphURL, logger: logger)
        print("Provisioning end to end over \(count) graphs (\(migrations) migrations each: graph-db + write-db; 3 collections; target p50 < 150 ms)")
        print(String(format: "  p50 %.1f ms   p95 %.1f ms", p50, p95))
        print("  median per step: " + steps.medians().map { String(format: "%@ %.1f ms", $0.0, $0.1) }.joined(separator: ", "))
        print(String(format: "  re-migrate all %d graph-db schemas: no-op %.1f ms in all (%.2f ms each), one new migration %.1f ms in all", count, noop, noop / Double(count), oneNew))
        for slug in slugs { try await provisioner.deleteGraph(slug: slug, hard: true) }
    }

    /// Milliseconds to apply `sets` to every graph's graph-db schema over one connection.
    static func remigrate(_ slugs: [String], sets: [MigrationSet], graphURL: DatabaseURL, logger: Logger) async throws -> Double {
        try await PostgresConnection.withConnection(configuration: .init(url: graphURL, applicationName: "kt-bench"), logger: logger) { connection in
            let start = ContinuousClock.now
            for slug in slugs { try await Migrator.migrate(sets, schema: try GraphSlug(slug).schemaName, on: connection, logger: logger) }
            return QdrantBenchmark.microseconds(ContinuousClock.now - start) / 1000
        }
    }
}

/// Durations of provisioning steps, from their progress events.
final class StepClock: @unchecked Sendable {
    private let lock = NSLock()
    private var started: [String: ContinuousClock.Instant] = [:]
    private var durations: [(String, Double)] = []

    func record(_ event: ProvisioningEvent) {
        lock.withLock {
            let name = "\(event.step)"
            switch event.phase {
            case .started: started[name] = .now
            case .finished, .failed:
                if let start = started[name] { durations.append((name, QdrantBenchmark.microseconds(.now - start) / 1000)) }
            }
        }
    }

    /// Each step's median, in the order the steps first finished.
    func medians() -> [(String, Double)] {
        lock.withLock {
            var order: [String] = []
            for (name, _) in durations where !order.contains(name) { order.append(name) }
            return order.map { name in
                let values = durations.filter { $0.0 == name }.map(\.1).sorted()
                return (name, values[values.count / 2])
            }
        }
    }
}
