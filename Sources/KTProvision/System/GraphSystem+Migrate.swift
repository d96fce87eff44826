public import Foundation
import KTConfig
public import KTDB
public import KTGraph
import Logging
import Metrics

/// What a migrate-all did to one graph.
public struct GraphMigrationOutcome: Sendable, Hashable {
    /// The result for one graph.
    public enum Result: Sendable, Hashable {
        /// This many migrations were applied (both schemas together).
        case migrated(Int)
        /// Both schemas were at head already.
        case upToDate
        /// A schema could not be migrated; the reason names the database and holds no secret.
        case failed(String)
    }

    /// The graph's id.
    public var graphID: UUID
    /// The graph's slug.
    public var slug: String
    /// Its database pair's connection key (`default` for the system pair).
    public var database: String
    /// What happened.
    public var result: Result

    /// Whether the graph could not be brought to head.
    public var failed: Bool {
        if case .failed = result { return true }
        return false
    }
}

/// Progress of a migrate-all: reported once per graph as its outcome is known.
public struct GraphMigrationProgress: Sendable {
    /// Graphs done so far.
    public var completed: Int
    /// Graphs in the run.
    public var total: Int
    /// The graph just done.
    public var outcome: GraphMigrationOutcome
}

extension GraphSystem {
    /// Brings the schemas of `graphs` to head on whichever databases they live, and records each
    /// outcome in the control plane (`graphs.schema_error`).
    ///
    /// - Each database is handled on its own pool: one statement (or one per 200 schemas) finds
    ///   which schemas are behind, so a run with nothing to do costs a few statements per
    ///   database; the schemas that are behind are migrated `settings.migrationParallelism` at a
    ///   time per database, databases side by side.
    /// - A failure stays with its graph: a database that cannot be reached fails its graphs
    ///   with the reason, and the run goes on with the others.
    /// - Killed at any point and run again, the run converges: every migration is applied in a
    ///   transaction of its own together with its version row, under a per-schema lock.
    ///
    /// - Parameters:
    ///   - graphSets, writeSets: the migration sets of each graph's graph-db and write-db schema
    ///     (default: the SDK's); an application may append sets of its own.
    public func migrateGraphs(
        _ graphs: [Graph], graphSets: [MigrationSet] = [.graphData], writeSets: [MigrationSet] = [.writeData],
        progress: @escaping @Sendable (GraphMigrationProgress) -> Void = { _ in }
    ) async -> [GraphMigrationOutcome] {
        let repository = GraphRepository(controlPlane, logger: logger)
        var connections: [UUID: DatabaseConnectionRecord] = [:]
        var listingError: String?
        if graphs.contains(where: { $0.databaseConnectionID != nil }) {
            do {
                for row in try await repository.listDatabaseConnections() { connections[row.id] = row }
            } catch {
                listingError = GraphProvisioner.describe(error)
            }
        }
        var outcomes: [UUID: GraphMigrationOutcome] = [:]
        var pendingSides: [UUID: Int] = [:]
        var sums: [UUID: Int] = [:]
        var reasons: [UUID: [String]] = [:]
        var items: [DatabaseEndpoint.Identity: (endpoint: DatabaseEndpoint, items: [MigrationItem])] = [:]
        var completed = 0
        let total = graphs.count
        func finish(_ outcome: GraphMigrationOutcome) {
            outcomes[outcome.graphID] = outcome
            completed += 1
            progress(GraphMigrationProgress(completed: completed, total: total, outcome: outcome))
        }
        for graph in graphs {
            let connection = graph.databaseConnectionID.flatMap { connections[$0] }
            let targets: GraphTargets
            do {
                if graph.databaseConnectionID != nil, connection == nil {
                    throw KTProvisionError(code: .unknownConnection, message: listingError ?? "the database connection of graph '\(graph.slug)' no longer exists")
                }
                targets = try GraphTargets.resolve(for: graph, connection: connection, settings: settings)
            } catch {
                let database = connection?.configKey ?? (graph.databaseConnectionID == nil ? GraphDatabases.defaultKey : "unknown")
                finish(GraphMigrationOutcome(graphID: graph.id, slug: graph.slug, database: database, result: .failed(GraphProvisioner.describe(error))))
                continue
            }
            pendingSides[graph.id] = 2
            for (endpoint, sets) in [(targets.graphEndpoint, graphSets), (targets.writeEndpoint, writeSets)] {
                items[endpoint.identity, default: (endpoint, [])].items.append(
                    MigrationItem(graph: graph, database: targets.connectionKey, schema: targets.schema, sets: sets))
            }
        }
        let (results, sink) = AsyncStream.makeStream(of: (MigrationItem, Result<Int, MigrationFailure>).self)
        async let producing: Void = withTaskGroup(of: Void.self) { group in
            for (_, entry) in items {
                group.addTask { await self.migrate(entry.items, on: entry.endpoint) { sink.yield(($0, $1)) } }
            }
            await group.waitForAll()
            sink.finish()
        }
        for await (item, result) in results {
            let id = item.graph.id
            switch result {
            case .success(let applied): sums[id, default: 0] += applied
            case .failure(let failure): reasons[id, default: []].append(failure.reason)
            }
            switch result {
            case .success(let applied): Counter(label: "kt_migrations_applied", dimensions: [("database", item.database)]).increment(by: applied)
            case .failure: Counter(label: "kt_migrations_failed", dimensions: [("database", item.database)]).increment()
            }
            pendingSides[id, default: 1] -= 1
            guard pendingSides[id] == 0 else { continue }
            let result: GraphMigrationOutcome.Result =
                if let failed = reasons[id] { .failed(failed.joined(separator: "; ")) } else if let applied = sums[id], applied > 0 { .migrated(applied) } else { .upToDate }
            finish(GraphMigrationOutcome(graphID: id, slug: item.graph.slug, database: item.database, result: result))
        }
        await producing
        let ordered = graphs.compactMap { outcomes[$0.id] }
        var failed: [UUID: String] = [:]
        for outcome in ordered { if case .failed(let reason) = outcome.result { failed[outcome.graphID] = reason } }
        do {
            try await repository.recordSchemaOutcomes(failed: failed, migrated: ordered.filter { !$0.failed }.map(\.graphID))
        } catch {
            logger.debug("Cannot record the migration outcomes", metadata: ["kt.error": "\(GraphProvisioner.describe(error))"])
        }
        return ordered
    }

    /// One schema of one graph on one database.
    struct MigrationItem: Sendable {
        var graph: Graph
        var database: String
        var schema: SchemaName
        var sets: [MigrationSet]
    }

    struct MigrationFailure: Error {
        var reason: String
    }

    /// Migrates the schemas of one database: finds the ones behind in a few statements, then
    /// migrates those `migrationParallelism` at a time on the database's pool.
    private func migrate(_ items: [MigrationItem], on endpoint: DatabaseEndpoint, report: @escaping @Sendable (MigrationItem, Result<Int, MigrationFailure>) -> Void) async {
        let logger = self.logger
        func failAll(_ error: any Error) {
            let reason = "\(endpoint): \(GraphProvisioner.describe(error))"
            for item in items { report(item, .failure(MigrationFailure(reason: reason))) }
        }
        let pool: PostgresConnectionPool, applied: [SchemaName: [String: Set<Int>]]
        do {
            pool = try resources.pool(for: endpoint)
            applied = try await pool.withConnection(logger: logger) { try await Migrator.appliedVersions(schemas: items.map(\.schema), on: $0, logger: logger) }
        } catch {
            return failAll(error)
        }
        var behind: [MigrationItem] = []
        for item in items {
            if let versions = applied[item.schema], Migrator.pendingCount(of: item.sets, applied: versions) == 0 {
                report(item, .success(0))
            } else {
                behind.append(item)
            }
        }
        await withTaskGroup(of: Void.self) { group in
            var next = behind.makeIterator()
            func start() {
                guard let item = next.next() else { return }
                group.addTask {
                    do {
                        let count = try await pool.withConnection(logger: logger) { connection in
                            try await Migrator.createSchemaIfNotExists(item.schema, on: connection, logger: logger)
                            return try await Migrator.migrate(item.sets, schema: item.schema, on: connection, logger: logger).applied.count
                        }
                        report(item, .success(count))
                    } catch {
                        logger.debug("A graph's schema could not be migrated", metadata: ["kt.graph": "\(item.graph.slug)", "kt.error": "\(GraphProvisioner.describe(error))"])
                        report(item, .failure(MigrationFailure(reason: "\(endpoint): \(GraphProvisioner.describe(error))")))
                    }
                }
            }
            for _ in 0..<max(1, settings.migrationParallelism) { start() }
            while await group.next() != nil { start() }
        }
    }
}
