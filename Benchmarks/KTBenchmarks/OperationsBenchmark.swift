import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// Operating many graphs (section `operate`), on the benchmark's 1,000 graphs (created as by
/// the `graphs` section and reused):
/// - migrate-all when nothing is to do (target < 1 s), and with one new small migration on every
///   graph-db and write-db schema (a column and an index; target < 15 s);
/// - the sync of 100 graphs with 100 new rows each against one graph with 10,000 new rows
///   (target: at most 2x its time).
enum OperationsBenchmark {
    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String, count: Int, logger: Logger) async throws {
        var settings = Settings()
        settings.databaseURL = graphURL
        settings.writeDatabaseURL = writeURL
        settings.qdrant.url = qdrantURL
        settings.embeddingDimensions = 8
        try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-bench"), logger: logger) { system in
            _ = try await system.prepare()
            let slugs = try await ManyGraphsBenchmark.ensureGraphs(count, system: system, logger: logger)
            let wanted = Set(slugs)
            let graphs = try await GraphRepository(system.controlPlane, logger: logger).listActive().filter { wanted.contains($0.slug) }
            try await migrateAll(system, graphs, logger: logger)
            try await syncMany(system, graphs, logger: logger)
        }
    }

    static func migrateAll(_ system: GraphSystem, _ graphs: [Graph], logger: Logger) async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let extraGraph = MigrationSet(name: "bench-\(tag)", migrations: [Migration(version: 1, name: "bench_column", sql: """
            ALTER TABLE nodes ADD COLUMN bench_\(tag) text;
            CREATE INDEX ix_nodes_bench_\(tag) ON nodes (bench_\(tag));
            """)])
        let extraWrite = MigrationSet(name: "bench-\(tag)", migrations: [Migration(version: 1, name: "bench_column", sql: """
            ALTER TABLE write_nodes ADD COLUMN bench_\(tag) text;
            CREATE INDEX ix_write_nodes_bench_\(tag) ON write_nodes (bench_\(tag));
            """)])
        func timed(_ graphSets: [MigrationSet], _ writeSets: [MigrationSet]) async throws -> (Double, Int, Int) {
            let start = ContinuousClock.now
            let outcomes = await system.migrateGraphs(graphs, graphSets: graphSets, writeSets: writeSets)
            let seconds = (ContinuousClock.now - start).seconds
            let failed = outcomes.filter(\.failed).count
            let applied = outcomes.reduce(0) { total, outcome in if case .migrated(let n) = outcome.result { total + n } else { total } }
            return (seconds, applied, failed)
        }
        let noop = try await timed([.graphData], [.writeData])
        let oneNew = try await timed([.graphData, extraGraph], [.writeData, extraWrite])
        let noopAfter = try await timed([.graphData, extraGraph], [.writeData, extraWrite])
        // Not timed: the benchmark's column and index go again, so runs do not pile them up.
        let revertGraph = MigrationSet(name: "bench-\(tag)-revert", migrations: [Migration(version: 1, name: "drop_bench_column", sql: "ALTER TABLE nodes DROP COLUMN bench_\(tag)")])
        let revertWrite = MigrationSet(name: "bench-\(tag)-revert", migrations: [Migration(version: 1, name: "drop_bench_column", sql: "ALTER TABLE write_nodes DROP COLUMN bench_\(tag)")])
        _ = await system.migrateGraphs(graphs, graphSets: [.graphData, extraGraph, revertGraph], writeSets: [.writeData, extraWrite, revertWrite])
        print("migrate-all over \(graphs.count) graphs (both schemas; MIGRATION_PARALLELISM \(system.settings.migrationParallelism) per database)")
        print(String(format: "  nothing to do: %.2f s (target < 1 s), %d failed", noop.0, noop.2))
        print(String(format: "  one new migration on every schema (a column and an index): %.2f s for %d migrations (target < 15 s), %d failed", oneNew.0, oneNew.1, oneNew.2))
        print(String(format: "  nothing to do again: %.2f s", noopAfter.0))
    }

    static func syncMany(_ system: GraphSystem, _ graphs: [Graph], logger: Logger) async throws {
        guard graphs.count >= 101 else { return }
        let small = Array(graphs.prefix(100)), big = graphs[100]
        let tag = UUID().uuidString.prefix(8).lowercased()
        // Writes first (not timed): 100 rows in each of 100 graphs, 10,000 in one.
        for graph in small {
            try await system.workerEngine(graphID: graph.id, logger: logger)
                .createNodes((0..<100).map { WorkerGraphEngine.NodeSpec(concept: "Sync \(tag) \($0)") })
        }
        let bigWorker = try await system.workerEngine(graphID: big.id, logger: logger)
        for chunk in stride(from: 0, to: 10_000, by: 1000) {
            try await bigWorker.createNodes((chunk..<chunk + 1000).map { WorkerGraphEngine.NodeSpec(concept: "Sync \(tag) \($0)") })
        }
        var settings = system.settings.sync
        settings.batchSize = 1000
        if let text = ProcessInfo.processInfo.environment["SYNC_PARALLELISM"], let value = Int(text) { settings.parallelism = value }
        var targets: [SyncTarget] = []
        for graph in small { targets.append(try await system.sessions(graphID: graph.id).syncTarget) }
        let list = targets
        let service = SyncService(settings: settings, logger: logger) { list }
        var start = ContinuousClock.now
        await service.runOnce()
        let many = (ContinuousClock.now - start).seconds
        let bigTarget = try await system.sessions(graphID: big.id)
        start = ContinuousClock.now
        let report = try await bigTarget.syncEngine(settings: settings, logger: logger).syncUntilIdle()
        let one = (ContinuousClock.now - start).seconds
        var left = 0
        for graph in small { left += try await system.sessions(graphID: graph.id).syncEngine(settings: settings, logger: logger).status().oldestUnsyncedChange == nil ? 0 : 1 }
        print("sync: 100 graphs x 100 new nodes vs 1 graph x 10,000 new nodes (SYNC_PARALLELISM \(settings.parallelism) per pair)")
        print(String(format: "  100 graphs %.2f s (%d not fully synced), one graph %.2f s (%d rows): ratio %.2fx (target <= 2x)",
                     many, left, one, report.applied["write_nodes"] ?? 0, many / one))
    }
}
