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
    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String, count: Int, migrate: Bool, sync: Bool, logger: Logger) async throws {
        let settings = Settings.benchmark(graphURL: graphURL, writeURL: writeURL, qdrantURL: qdrantURL)
        try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-bench"), logger: logger) { system in
            _ = try await system.prepare()
            if migrate {
                let slugs = try await ManyGraphsBenchmark.ensureGraphs(count, system: system, logger: logger)
                let wanted = Set(slugs)
                let graphs = try await GraphRepository(system.controlPlane, logger: logger).listActive().filter { wanted.contains($0.slug) }
                try await migrateAll(system, graphs, logger: logger)
            }
            if sync { try await syncMany(system, logger: logger) }
        }
    }

    static func migrateAll(_ system: GraphSystem, _ graphs: [Graph], logger: Logger) async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let extraGraph = MigrationSet(
            name: "bench-\(tag)",
            migrations: [
                Migration(
                    version: 1, name: "bench_column",
                    sql: """
                        ALTER TABLE nodes ADD COLUMN bench_\(tag) text;
                        CREATE INDEX ix_nodes_bench_\(tag) ON nodes (bench_\(tag));
                        """)
            ])
        let extraWrite = MigrationSet(
            name: "bench-\(tag)",
            migrations: [
                Migration(
                    version: 1, name: "bench_column",
                    sql: """
                        ALTER TABLE write_nodes ADD COLUMN bench_\(tag) text;
                        CREATE INDEX ix_write_nodes_bench_\(tag) ON write_nodes (bench_\(tag));
                        """)
            ])
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

    /// Paired rounds on 101 graphs made for this run (dropped afterwards), after an untimed pass
    /// that syncs a node of every graph: each round writes
    /// 100 new nodes into each of 100 graphs and 10,000 into the last, then syncs the 100 with one
    /// service pass and the one until idle; the figure is the median of the rounds' ratios.
    static func syncMany(_ system: GraphSystem, logger: Logger) async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let slugs = try await ManyGraphsBenchmark.ensureGraphs(101, prefix: "sync_\(tag)", system: system, logger: logger)
        var settings = system.settings.sync
        settings.batchSize = 1000
        if let text = ProcessInfo.processInfo.environment["SYNC_PARALLELISM"], let value = Int(text) { settings.parallelism = value }
        var targets: [SyncTarget] = []
        for slug in slugs.prefix(100) { targets.append(try await system.sessions(slug: slug).syncTarget) }
        let list = targets
        let service = SyncService(settings: settings, logger: logger) { list }
        let big = try await system.sessions(slug: slugs[100])
        // Warm-up (not timed): a node in every graph, synced, so both sides open their
        // connections and their server processes have met every graph's tables once (a sync
        // service runs for days; a process's first look at a schema is not its steady state).
        for slug in slugs {
            try await system.workerEngine(slug: slug, logger: logger).createNodes([WorkerGraphEngine.NodeSpec(concept: "Warm-up")])
        }
        await service.runOnce()
        try await big.syncEngine(settings: settings, logger: logger).syncUntilIdle()
        // The fixed cost of a pass: a cycle per graph that finds nothing to copy (the warm-up
        // took everything).
        let idleStart = ContinuousClock.now
        await service.runOnce()
        let idle = (ContinuousClock.now - idleStart).seconds
        var rounds: [(many: Double, one: Double)] = []
        for round in 0..<5 {
            for slug in slugs.prefix(100) {
                try await system.workerEngine(slug: slug, logger: logger)
                    .createNodes((0..<100).map { WorkerGraphEngine.NodeSpec(concept: "Sync \(round) \($0)") })
            }
            let bigWorker = big.workerEngine(embedder: nil, logger: logger)
            for chunk in stride(from: 0, to: 10_000, by: 1000) {
                try await bigWorker.createNodes((chunk..<chunk + 1000).map { WorkerGraphEngine.NodeSpec(concept: "Sync \(round) \($0)") })
            }
            var start = ContinuousClock.now
            await service.runOnce()
            let many = (ContinuousClock.now - start).seconds
            start = ContinuousClock.now
            let report = try await big.syncEngine(settings: settings, logger: logger).syncUntilIdle()
            let one = (ContinuousClock.now - start).seconds
            guard report.applied["write_nodes"] == 10_000 else { throw KTGraphError(code: .invalidArgument, message: "the large graph's sync applied \(report.applied["write_nodes"] ?? 0) nodes") }
            for slug in slugs.prefix(100) {
                guard try await system.sessions(slug: slug).syncEngine(settings: settings, logger: logger).status().oldestUnsyncedChange == nil else {
                    throw KTGraphError(code: .invalidArgument, message: "graph \(slug) was not fully synced by the pass")
                }
            }
            rounds.append((many, one))
        }
        let ratios = rounds.map { $0.many / $0.one }.sorted()
        print("sync: 100 graphs x 100 new nodes (one service pass) vs 1 graph x 10,000 new nodes (SYNC_PARALLELISM \(settings.parallelism) per pair), 5 paired rounds")
        print(String(format: "  a pass over the 100 graphs with nothing to copy: %.2f s", idle))
        print(
            String(
                format: "  rounds: %@; median ratio %.2fx (%.2f-%.2f) (target <= 2x)",
                rounds.map { String(format: "%.2f s vs %.2f s", $0.many, $0.one) }.joined(separator: ", "), ratios[2], ratios[0], ratios[4]))
        for slug in slugs { try await system.provisioner.deleteGraph(slug: slug, hard: true) }
    }
}
