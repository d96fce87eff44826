public import Foundation
public import KTConfig
public import KTDB
public import KTGraph
public import Logging
public import ServiceLifecycle

/// The one owner of a process's graphs: the system pools, the control-plane session, the
/// provisioner, the session resolver, and one pool per database that any graph lives in.
///
/// - **Pools per database, not per graph.** Every graph whose graph-db is the same database
///   shares one pool (the same for write-dbs); the default graph and the graphs without a
///   database connection share the system pair's pools. A process never holds more connections
///   to a database than that database's pool size plus overflow, whatever the number of graphs.
///   Schemas are chosen per transaction or per statement.
/// - **Transaction poolers.** A database marked as reached through PgBouncer in transaction
///   mode (`DB_PGBOUNCER`, `WRITE_DB_PGBOUNCER`, `graph_pgbouncer` / `write_pgbouncer`) gets a
///   pool without named prepared statements; one-off connections never use them.
/// - **Several processes.** Changes of a graph's row made by any process (status, delete,
///   database connection, ...) are recorded by control-plane triggers; the system polls that log
///   through its control-plane pool every ``Configuration/changePollInterval`` and drops the
///   stale cached sessions, and re-checks every cached graph every
///   ``Configuration/reconcileInterval`` (and all of them after the control plane was
///   unreachable). No `LISTEN` is needed, so this works with the system graph-db behind a pooler.
///
/// It is a swift-service-lifecycle `Service`: ``run()`` drives every pool it owns, including
/// pools created while it runs, and the change watcher, until graceful shutdown or cancellation;
/// then it shuts every pool down. Without a service group use
/// ``withGraphSystem(settings:configuration:logger:_:)``.
///
/// ```swift
/// try await withGraphSystem(settings: settings, logger: logger) { system in
///     let reader = try await system.readEngine(slug: "news", logger: logger)
///     let nodes = try await reader.listNodes(offset: 0, limit: 10)
/// }
/// ```
public final class GraphSystem: Service, Sendable {
    /// Options of a graph system.
    public struct Configuration: Sendable {
        /// `application_name` of pooled connections (visible in `pg_stat_activity`). Default `kt`.
        public var applicationName: String
        /// How often the log of graph changes is read. Default 500 ms.
        public var changePollInterval: Duration
        /// How often every cached graph is compared with its row. Default 30 s.
        public var reconcileInterval: Duration
        /// How long a provisioner's heartbeat vouches for it (see ``GraphProvisioner``). Default 30 s.
        public var provisioningLease: Duration

        /// Creates options.
        public init(
            applicationName: String = "kt", changePollInterval: Duration = .milliseconds(500),
            reconcileInterval: Duration = .seconds(30), provisioningLease: Duration = .seconds(30)
        ) {
            self.applicationName = applicationName
            self.changePollInterval = changePollInterval
            self.reconcileInterval = reconcileInterval
            self.provisioningLease = provisioningLease
        }
    }

    /// The settings naming every database, Qdrant and pool size.
    public let settings: Settings
    /// The options.
    public let configuration: Configuration
    /// This process's identity as a provisioner.
    public let instanceID: UUID
    /// The pool of the system graph-db (control plane and default graph).
    public let systemGraphPool: PostgresConnectionPool
    /// The pool of the system write-db.
    public let systemWritePool: PostgresConnectionPool
    /// A session on the control plane (`public` of the system graph-db).
    public let controlPlane: DatabaseSession
    /// Routes graphs to cached sessions on the shared pools.
    public let resolver: GraphSessionResolver
    /// Creates, retries and deletes graphs.
    public let provisioner: GraphProvisioner
    let resources: SharedResources
    let logger: Logger

    /// Creates a graph system; no connection is opened until first use.
    public init(settings: Settings, configuration: Configuration = Configuration(), logger: Logger) throws {
        // The driver's threads are configuration too (before this system's first connection).
        if let loops = settings.postgresEventLoops { try PostgresEventLoops.configure(count: loops) }
        self.settings = settings
        self.configuration = configuration
        self.logger = logger
        let instanceID = UUID()
        self.instanceID = instanceID
        resources = SharedResources(settings: settings, applicationName: configuration.applicationName, logger: logger)
        systemGraphPool = try resources.pool(for: .systemGraph(settings))
        systemWritePool = try resources.pool(for: .systemWrite(settings))
        controlPlane = DatabaseSession(pool: systemGraphPool)
        resolver = GraphSessionResolver(settings: settings, controlPlane: controlPlane, resources: resources, logger: logger)
        provisioner = GraphProvisioner(
            settings: settings, controlPlane: controlPlane, owner: instanceID, provisioningLease: configuration.provisioningLease, logger: logger,
            resources: resources)
    }

    // MARK: Graphs

    /// The sessions of the graph `slug`.
    public func sessions(slug: String) async throws -> GraphSessions { try await resolver.resolve(slug: slug) }

    /// The sessions of the graph with `id`.
    public func sessions(graphID: UUID) async throws -> GraphSessions { try await resolver.resolve(graphID: graphID) }

    /// A worker engine (write-db and Qdrant) on the graph `slug`.
    public func workerEngine(slug: String, embedder: (any EmbeddingService)? = nil, logger: Logger) async throws -> WorkerGraphEngine {
        try await sessions(slug: slug).workerEngine(embedder: embedder ?? settings.embedder, logger: logger)
    }

    /// A worker engine on the graph with `id`.
    public func workerEngine(graphID: UUID, embedder: (any EmbeddingService)? = nil, logger: Logger) async throws -> WorkerGraphEngine {
        try await sessions(graphID: graphID).workerEngine(embedder: embedder ?? settings.embedder, logger: logger)
    }

    /// A read engine (graph-db and Qdrant) on the graph `slug`.
    public func readEngine(slug: String, logger: Logger) async throws -> ReadGraphEngine {
        try await sessions(slug: slug).readEngine(logger: logger)
    }

    /// A read engine on the graph with `id`.
    public func readEngine(graphID: UUID, logger: Logger) async throws -> ReadGraphEngine {
        try await sessions(graphID: graphID).readEngine(logger: logger)
    }

    /// Drops this process's cached sessions of a graph now (other processes follow through the
    /// change log within ``Configuration/changePollInterval``).
    public func invalidate(graphID: UUID) async { await resolver.invalidate(graphID: graphID) }

    /// Every active graph (the default one first) as sync targets.
    public func syncTargets() async throws -> [SyncTarget] { try await resolver.syncTargets() }

    /// The pools this system holds, each with its endpoint label and current statistics.
    public var poolStatistics: [(label: String, statistics: PostgresConnectionPool.Statistics)] {
        resources.pools.map { ($0.configuration.label, $0.statistics) }.sorted { $0.label < $1.label }
    }

    // MARK: Lifecycle

    /// Drives every pool (also those created later) and the change watcher until graceful
    /// shutdown or cancellation, then shuts everything down.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                try? await gracefulShutdown()
                await self.shutdown()
            }
            group.addTask { await self.watchChanges() }
            for await pool in resources.additions {
                group.addTask { try? await pool.run() }
            }
            // The pools are shut down: stop the watcher (and the shutdown waiter).
            group.cancelAll()
        }
    }

    /// Shuts every pool down and closes the dedicated Qdrant clients; later requests fail with
    /// ``KTProvisionError/Code/shutDown`` or ``KTDBError/Code/poolClosed``.
    public func shutdown() async {
        await resolver.invalidateAll()
        await resources.shutdown()
    }
}

/// Creates a ``GraphSystem``, runs it while `body` runs, and shuts it down afterwards (also when
/// `body` throws).
public func withGraphSystem<T: Sendable>(
    settings: Settings, configuration: GraphSystem.Configuration = GraphSystem.Configuration(), logger: Logger,
    _ body: (GraphSystem) async throws -> T
) async throws -> T {
    let system = try GraphSystem(settings: settings, configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await system.run() }
        do {
            let value = try await body(system)
            await system.shutdown()
            try await group.waitForAll()
            return value
        } catch {
            await system.shutdown()
            group.cancelAll()
            throw error
        }
    }
}
