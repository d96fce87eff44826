public import KTConfig
import KTDB
import KTGraph
public import Logging

/// What a process does before it serves: migrate everything, recover interrupted
/// provisioning, and refuse a control plane that shadows the reserved key.
public enum ServerStartup {
    /// What a startup (``GraphSystem/prepare(progress:)``) did.
    public struct Report: Sendable {
        /// Migrations applied, control plane and graphs together.
        public var appliedMigrations: Int
        /// Slugs of the active graphs whose schemas are at head (migrated now or already).
        public var migratedGraphs: [String]
        /// Slugs of graphs moved from `provisioning` to `error` (their provisioner is gone).
        public var recoveredGraphs: [String]
        /// Slugs of graphs in status `moving` (a move runs in another process, or its process
        /// stopped: `GraphProvisioner.moveGraph(slug:toDatabase:resume:grace:progress:)` with
        /// `resume` rolls it back and moves again; they are served from their source meanwhile),
        /// and of graphs whose move switched but whose source was not dropped yet (a resumed
        /// move drops it).
        public var movingGraphs: [String] = []
        /// Every active graph's outcome, in slug order (the default graph is not listed: it is
        /// migrated with the control plane).
        public var outcomes: [GraphMigrationOutcome]

        /// The graphs that could not be brought to head.
        public var failedGraphs: [GraphMigrationOutcome] { outcomes.filter(\.failed) }
    }

    /// Like ``prepare(settings:provisioningLease:logger:)`` with a 30 s lease.
    public static func prepare(settings: Settings, logger: Logger) async throws -> Report {
        try await prepare(settings: settings, provisioningLease: .seconds(30), logger: logger)
    }

    /// ``GraphSystem/prepare(progress:)`` on a graph system of its own, shut down afterwards.
    public static func prepare(settings: Settings, provisioningLease: Duration, logger: Logger) async throws -> Report {
        try await withGraphSystem(
            settings: settings, configuration: .init(applicationName: "kt-startup", provisioningLease: provisioningLease), logger: logger
        ) { try await $0.prepare() }
    }
}

extension GraphSystem {
    /// What a process does before it serves:
    ///
    /// 1. Migrates the control plane and the default graph on the system databases.
    /// 2. Refuses to continue while a `database_connections` row uses the key `default`.
    /// 3. Moves to `error` the graphs stuck in `provisioning` whose provisioner has sent no
    ///    heartbeat for the provisioning lease (its process is gone), so they can be retried; a
    ///    graph that another live process is provisioning is left alone.
    /// 4. Migrates every active graph's schemas wherever they live (``migrateGraphs(_:progress:)``):
    ///    a graph that fails keeps its reason and answers 503; the others serve.
    ///
    /// - Throws: ``KTProvisionError/Code/invalidState`` for a reserved-key row; errors of the
    ///   system databases (without them nothing can serve). A graph's failure is in the report.
    public func prepare(progress: @escaping @Sendable (GraphMigrationProgress) -> Void = { _ in }) async throws -> ServerStartup.Report {
        var applied = try await systemGraphPool.withConnection(logger: logger) {
            try await Migrator.migrate([.controlPlane, .graphData], schema: .public, on: $0, logger: logger).applied.count
        }
        applied += try await systemWritePool.withConnection(logger: logger) {
            try await Migrator.migrate([.writeData], schema: .public, on: $0, logger: logger).applied.count
        }
        let repository = GraphRepository(controlPlane, logger: logger)
        let reserved = try await repository.reservedKeyConnections()
        guard reserved.isEmpty else {
            throw KTProvisionError(
                code: .invalidState,
                message:
                    "refusing to start: database_connections row(s) \(reserved.map { "'\($0.name)'" }.joined(separator: ", ")) use the reserved key '\(GraphDatabases.defaultKey)'; rename their config_key"
            )
        }
        let recovered = try await repository.recoverAbandonedProvisioning(lease: configuration.provisioningLease)
        let outcomes = await migrateGraphs(try await repository.listActive().filter { !$0.isDefault }, progress: progress)
        for outcome in outcomes {
            if case .migrated(let count) = outcome.result { applied += count }
        }
        return ServerStartup.Report(
            appliedMigrations: applied, migratedGraphs: outcomes.filter { !$0.failed }.map(\.slug), recoveredGraphs: recovered,
            movingGraphs: Array(Set(try await repository.list(status: .moving).map(\.slug) + repository.listWithMoveSource().map(\.slug))).sorted(),
            outcomes: outcomes)
    }
}
