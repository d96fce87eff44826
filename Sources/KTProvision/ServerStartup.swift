public import KTConfig
import KTDB
public import Logging

/// What a server process does before it serves: migrate everything, recover interrupted
/// provisioning, and refuse a control plane that shadows the reserved key.
public enum ServerStartup {
    /// What ``prepare(settings:logger:)`` did.
    public struct Report: Sendable {
        /// Migrations applied, control plane and graphs together.
        public var appliedMigrations: Int
        /// Slugs of the active graphs whose schemas were checked and migrated.
        public var migratedGraphs: [String]
        /// Slugs of graphs moved from `provisioning` to `error` (their provisioner is gone).
        public var recoveredGraphs: [String]
    }

    /// Like ``prepare(settings:provisioningLease:logger:)`` with a 30 s lease.
    public static func prepare(settings: Settings, logger: Logger) async throws -> Report {
        try await prepare(settings: settings, provisioningLease: .seconds(30), logger: logger)
    }

    /// 1. Migrates the control plane and the default graph on the system databases.
    /// 2. Refuses to continue while a `database_connections` row uses the key `default`.
    /// 3. Moves to `error` the graphs stuck in `provisioning` whose provisioner has sent no
    ///    heartbeat for `provisioningLease` (its process is gone), so they can be retried; a graph
    ///    that another live process is provisioning is left alone.
    /// 4. Migrates every active graph's schemas on whichever databases it lives (external ones too).
    ///
    /// Every connection is a one-off connection without named prepared statements, so each
    /// database may sit behind PgBouncer in transaction mode.
    ///
    /// - Throws: ``KTProvisionError/Code/invalidState`` for a reserved-key row; migration and
    ///   connection errors otherwise (a graph whose connection key is not configured here is an error).
    public static func prepare(settings: Settings, provisioningLease: Duration, logger: Logger) async throws -> Report {
        var report = Report(appliedMigrations: 0, migratedGraphs: [], recoveredGraphs: [])
        let graphConfig = DatabaseEndpoint.systemGraph(settings).oneOffConnection(application: "kt-startup")
        let writeConfig = DatabaseEndpoint.systemWrite(settings).oneOffConnection(application: "kt-startup")
        let graphs = try await PostgresConnection.withConnection(configuration: graphConfig, logger: logger) { graphDB in
            try await PostgresConnection.withConnection(configuration: writeConfig, logger: logger) { writeDB in
                report.appliedMigrations += try await Migrator.migrateSystem(graphDB: graphDB, writeDB: writeDB, logger: logger).applied.count
            }
            let repository = GraphRepository(graphDB, logger: logger)
            let reserved = try await repository.reservedKeyConnections()
            guard reserved.isEmpty else {
                throw KTProvisionError(
                    code: .invalidState,
                    message: "refusing to start: database_connections row(s) \(reserved.map { "'\($0.name)'" }.joined(separator: ", ")) use the reserved key '\(GraphDatabases.defaultKey)'; rename their config_key")
            }
            report.recoveredGraphs = try await repository.recoverAbandonedProvisioning(lease: provisioningLease)
            var active: [(Graph, GraphTargets)] = []
            for graph in try await repository.listActive() where !graph.isDefault {
                active.append((graph, try await GraphTargets.resolve(for: graph, repository: repository, settings: settings)))
            }
            return active
        }
        for (graph, targets) in graphs {
            try await targets.withConnections(application: "kt-startup-\(graph.slug)", logger: logger) { graphDB, writeDB in
                report.appliedMigrations += try await Migrator.migrateGraph(schema: targets.schema, graphDB: graphDB, writeDB: writeDB, logger: logger).applied.count
            }
            report.migratedGraphs.append(graph.slug)
        }
        return report
    }
}
