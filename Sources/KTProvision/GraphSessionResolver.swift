public import Foundation
public import KTConfig
public import KTDB
public import KTQdrant
public import Logging

/// Everything needed to work on one graph: sessions on its graph-db and write-db bound to its
/// schema, and its Qdrant client and collection names.
public struct GraphSessions: Sendable {
    /// The graph row as resolved.
    public let graph: Graph
    /// Where the graph lives.
    public let targets: GraphTargets
    /// graph-db session bound to the graph's schema.
    public let graphSession: DatabaseSession
    /// write-db session bound to the graph's schema.
    public let writeSession: DatabaseSession
    /// The Qdrant client of the graph's database pair.
    public let qdrant: QdrantClient
    /// The graph's collection names (prefix `<slug>__`, none for the default graph).
    public let collections: QdrantCollections
    let ownsPools: Bool
    let ownsQdrant: Bool
}

/// Maps a graph id or slug to cached ``GraphSessions`` on the right databases.
///
/// - The default graph reuses the system pools (schema `public`) and the global Qdrant.
/// - A graph without a database connection gets dedicated pools on the system databases with
///   the multigraph pool settings; a graph on an external connection gets dedicated pools from
///   `settings.graphDatabases[key]` with that entry's pool settings, and that pair's Qdrant
///   (a dedicated client when its URL differs from the global one).
/// - First resolution of a graph is single-flight: concurrent callers share one build.
/// - ``invalidate(graphID:)`` drops the entry and shuts its dedicated pools and client down.
public actor GraphSessionResolver {
    /// Options for the pools the resolver creates.
    public struct Configuration: Sendable {
        /// Prepared-statement mode of graph-db pools. Default `.cached`.
        public var graphPreparedStatements: PostgresConnection.PreparedStatementMode
        /// Prepared-statement mode of write-db pools. Default `.disabled` (write-db sits behind PgBouncer).
        public var writePreparedStatements: PostgresConnection.PreparedStatementMode

        /// Creates options.
        public init(graphPreparedStatements: PostgresConnection.PreparedStatementMode = .cached,
                    writePreparedStatements: PostgresConnection.PreparedStatementMode = .disabled) {
            self.graphPreparedStatements = graphPreparedStatements
            self.writePreparedStatements = writePreparedStatements
        }
    }

    private let settings: Settings
    private let configuration: Configuration
    private let controlPlane: DatabaseSession
    private let systemGraphPool: PostgresConnectionPool
    private let systemWritePool: PostgresConnectionPool
    private let logger: Logger
    private var cache: [UUID: GraphSessions] = [:]
    private var slugToID: [String: UUID] = [:]
    private var inFlight: [UUID: Task<GraphSessions, any Error>] = [:]

    /// Creates a resolver; the system pools serve the default graph (and `controlPlane` reads `graphs`).
    public init(
        settings: Settings, controlPlane: DatabaseSession, systemGraphPool: PostgresConnectionPool, systemWritePool: PostgresConnectionPool,
        configuration: Configuration = Configuration(), logger: Logger
    ) {
        self.settings = settings
        self.controlPlane = controlPlane
        self.systemGraphPool = systemGraphPool
        self.systemWritePool = systemWritePool
        self.configuration = configuration
        self.logger = logger
    }

    /// The sessions of the graph with `id`.
    ///
    /// - Throws: ``KTProvisionError/Code/notFound`` for an unknown or deleted graph,
    ///   ``KTProvisionError/Code/unknownConnection`` naming the `EXTRA_DB_<KEY>_*` variables
    ///   when its connection key is not configured in this process.
    public func resolve(graphID id: UUID) async throws -> GraphSessions {
        if let cached = cache[id] { return cached }
        if let running = inFlight[id] { return try await running.value }
        let task = Task { try await self.build(id: id) }
        inFlight[id] = task
        defer { inFlight[id] = nil }
        let sessions = try await task.value
        cache[id] = sessions
        slugToID[sessions.graph.slug] = id
        return sessions
    }

    /// The sessions of the graph with `slug`.
    public func resolve(slug: String) async throws -> GraphSessions {
        if let id = slugToID[slug], let cached = cache[id] { return cached }
        guard let graph = try await GraphRepository(controlPlane, logger: logger).graph(slug: slug), graph.status != .deleted else {
            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
        }
        return try await resolve(graphID: graph.id)
    }

    /// The graphs whose status is `active`.
    public func listActiveGraphs() async throws -> [Graph] {
        try await GraphRepository(controlPlane, logger: logger).listActive()
    }

    /// Drops a graph's cached sessions and shuts its dedicated pools and Qdrant client down.
    public func invalidate(graphID id: UUID) async {
        guard let sessions = cache.removeValue(forKey: id) else { return }
        slugToID[sessions.graph.slug] = nil
        await dispose(sessions)
    }

    /// Invalidates every graph.
    public func shutdown() async {
        for id in Array(cache.keys) { await invalidate(graphID: id) }
    }

    private func dispose(_ sessions: GraphSessions) async {
        if sessions.ownsPools {
            await sessions.graphSession.pool.shutdown()
            await sessions.writeSession.pool.shutdown()
        }
        if sessions.ownsQdrant { sessions.qdrant.close() }
    }

    private func build(id: UUID) async throws -> GraphSessions {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard let graph = try await repository.graph(id: id), graph.status != .deleted else {
            throw KTProvisionError(code: .notFound, message: "no graph with id \(id)")
        }
        let targets = try await GraphTargets.resolve(for: graph, repository: repository, settings: settings)
        let collections = QdrantCollections(graphSlug: graph.slug)
        let (qdrant, dedicatedQdrant) = try targets.qdrantClient(settings: settings, logger: logger)
        if graph.isDefault {
            return GraphSessions(
                graph: graph, targets: targets, graphSession: DatabaseSession(pool: systemGraphPool), writeSession: DatabaseSession(pool: systemWritePool),
                qdrant: qdrant, collections: collections, ownsPools: false, ownsQdrant: dedicatedQdrant)
        }
        func pool(_ url: DatabaseURL, _ ssl: SSLMode?, _ sizing: PoolSettings, _ mode: PostgresConnection.PreparedStatementMode, _ label: String) -> PostgresConnectionPool {
            PostgresConnectionPool(
                configuration: .init(
                    connection: .init(url: url, applicationName: "kt-\(label)-\(graph.slug)", defaultSSLMode: ssl, preparedStatements: mode),
                    pool: sizing, label: "\(label):\(graph.slug)"),
                backgroundLogger: logger)
        }
        let graphPool = pool(targets.graphDatabaseURL, targets.graphSSLMode, targets.graphPool, configuration.graphPreparedStatements, "graph")
        let writePool = pool(targets.writeDatabaseURL, targets.writeSSLMode, targets.writePool, configuration.writePreparedStatements, "write")
        logger.debug("Resolved a graph's sessions", metadata: ["kt.graph": "\(graph.slug)", "kt.schema": "\(targets.schema)", "kt.db.connection": "\(targets.connectionKey)"])
        return GraphSessions(
            graph: graph, targets: targets,
            graphSession: DatabaseSession(pool: graphPool, schema: targets.schema), writeSession: DatabaseSession(pool: writePool, schema: targets.schema),
            qdrant: qdrant, collections: collections, ownsPools: true, ownsQdrant: dedicatedQdrant)
    }
}
