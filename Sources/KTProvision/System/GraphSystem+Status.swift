import Foundation
import KTConfig
import KTDB
public import KTGraph
public import Logging

/// A schema's migration version against the head of its migration set.
public struct SchemaVersion: Sendable, Hashable {
    /// The migration set (`graph-data` or `write-data`).
    public var set: String
    /// The highest version applied (0: none, or the schema is missing).
    public var applied: Int
    /// The highest version this build knows.
    public var head: Int

    /// Whether the schema is at head.
    public var atHead: Bool { applied >= head }
}

/// What an operator needs to know about one graph.
public struct GraphStatusReport: Sendable {
    /// The graph row.
    public var graph: Graph
    /// Its database pair's connection key (`default` for the system pair).
    public var database: String
    /// The graph-db schema's version (`nil` when it could not be read; see ``problems``).
    public var graphSchema: SchemaVersion?
    /// The write-db schema's version (`nil` when it could not be read).
    public var writeSchema: SchemaVersion?
    /// The sync's lag and queue (`nil` when it could not be read).
    public var sync: SyncStatus?
    /// What could not be read, each naming the database (never a secret).
    public var problems: [String]
}

extension GraphSystem {
    /// The status of `graph`: where it lives, both schemas' versions against head, the sync's lag
    /// and dead letters. Nothing here throws: what cannot be read is listed in `problems`.
    public func status(of graph: Graph, logger: Logger) async -> GraphStatusReport {
        var report = GraphStatusReport(graph: graph, database: GraphDatabases.defaultKey, problems: [])
        if let reason = graph.schemaError { report.problems.append("last migration failed: \(reason)") }
        let targets: GraphTargets
        do {
            targets = try await GraphTargets.resolve(for: graph, repository: GraphRepository(controlPlane, logger: logger), settings: settings)
        } catch {
            report.problems.append(GraphProvisioner.describe(error))
            return report
        }
        report.database = targets.connectionKey
        async let graphVersion = version(of: .graphData, schema: targets.schema, on: targets.graphEndpoint, logger: logger)
        async let writeVersion = version(of: .writeData, schema: targets.schema, on: targets.writeEndpoint, logger: logger)
        for (keyPath, result) in [(\GraphStatusReport.graphSchema, await graphVersion), (\GraphStatusReport.writeSchema, await writeVersion)] {
            switch result {
            case .success(let version): report[keyPath: keyPath] = version
            case .failure(let problem): report.problems.append(problem.reason)
            }
        }
        if report.writeSchema?.applied ?? 0 > 0 {
            do {
                let writePool = try resources.pool(for: targets.writeEndpoint), graphPool = try resources.pool(for: targets.graphEndpoint)
                let engine = SyncEngine(
                    writeSession: DatabaseSession(pool: writePool, schema: targets.schema), graphSession: DatabaseSession(pool: graphPool, schema: targets.schema),
                    graphSlug: graph.slug, settings: settings.sync, logger: logger)
                report.sync = try await engine.status()
            } catch {
                report.problems.append("\(targets.writeEndpoint): \(GraphProvisioner.describe(error))")
            }
        }
        return report
    }

    /// The status of each of `graphs`, `migrationParallelism` at a time, in their order.
    public func status(of graphs: [Graph], logger: Logger) async -> [GraphStatusReport] {
        await withTaskGroup(of: (Int, GraphStatusReport).self) { group in
            var next = graphs.enumerated().makeIterator()
            func start() {
                guard let (index, graph) = next.next() else { return }
                group.addTask { (index, await self.status(of: graph, logger: logger)) }
            }
            for _ in 0..<max(1, settings.migrationParallelism) { start() }
            var reports = [GraphStatusReport?](repeating: nil, count: graphs.count)
            while let (index, report) = await group.next() {
                reports[index] = report
                start()
            }
            return reports.compactMap { $0 }
        }
    }

    private func version(of set: MigrationSet, schema: SchemaName, on endpoint: DatabaseEndpoint, logger: Logger) async -> Result<SchemaVersion, MigrationFailure> {
        do {
            let applied = try await resources.pool(for: endpoint).withConnection(logger: logger) {
                try await Migrator.appliedVersions(schemas: [schema], on: $0, logger: logger)
            }
            return .success(SchemaVersion(set: set.name, applied: applied[schema]?[set.name]?.max() ?? 0, head: set.migrations.map(\.version).max() ?? 0))
        } catch {
            return .failure(MigrationFailure(reason: "\(endpoint): \(GraphProvisioner.describe(error))"))
        }
    }
}
