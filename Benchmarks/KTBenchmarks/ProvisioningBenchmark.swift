import Foundation
import KTConfig
import KTDB
import KTProvision
import Logging

/// Provisioning one graph end to end (row, two schemas, two migration sets, three Qdrant
/// collections, activation), p50 and p95 over `count` graphs, next to the migrations applied;
/// then re-migrating all of them: an idempotent no-op, and one new migration (target p50 < 150 ms).
enum ProvisioningBenchmark {
    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String, count: Int, logger: Logger) async throws {
        var settings = Settings()
        settings.databaseURL = graphURL
        settings.writeDatabaseURL = writeURL
        settings.qdrant.url = qdrantURL
        settings.embeddingDimensions = 8
        _ = try await ServerStartup.prepare(settings: settings, logger: logger)
        let pool = PostgresConnectionPool(
            configuration: .init(connection: .init(url: graphURL, applicationName: "kt-bench"), pool: PoolSettings(size: 2, maxOverflow: 0, timeout: .seconds(30), recycle: .seconds(3600))),
            backgroundLogger: logger)
        let provisioner = GraphProvisioner(settings: settings, controlPlane: DatabaseSession(pool: pool), logger: logger)
        let prefix = "bench_\(UInt16.random(in: 0...UInt16.max))"
        var timings: [Double] = []
        var slugs: [String] = []
        for index in 0..<count {
            let slug = "\(prefix)_\(index)"
            let start = ContinuousClock.now
            try await provisioner.createGraph(slug: slug, name: "Bench \(index)")
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
        print(String(format: "  re-migrate all %d graph-db schemas: no-op %.1f ms in all (%.2f ms each), one new migration %.1f ms in all", count, noop, noop / Double(count), oneNew))
        for slug in slugs { try await provisioner.deleteGraph(slug: slug, hard: true) }
        await pool.shutdown()
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
