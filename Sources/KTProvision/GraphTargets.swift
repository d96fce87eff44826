public import KTConfig
public import KTDB
public import KTQdrant
public import Logging

/// Where a graph's data lives: its graph-db and write-db (with pool settings), its schema, and
/// its Qdrant.
public struct GraphTargets: Sendable, Hashable {
    /// The graph-db.
    public var graphDatabaseURL: DatabaseURL
    /// The write-db.
    public var writeDatabaseURL: DatabaseURL
    /// `sslmode` for graph-db connections whose URL names none.
    public var graphSSLMode: SSLMode?
    /// `sslmode` for write-db connections whose URL names none.
    public var writeSSLMode: SSLMode?
    /// Pool settings of the graph-db (shared by every graph living there).
    public var graphPool: PoolSettings
    /// Pool settings of the write-db (shared by every graph living there).
    public var writePool: PoolSettings
    /// Whether the graph-db is reached through a transaction-mode pooler.
    public var graphThroughPooler: Bool
    /// Whether the write-db is reached through a transaction-mode pooler.
    public var writeThroughPooler: Bool
    /// The schema in both databases (`public` for the default graph).
    public var schema: SchemaName
    /// The Qdrant REST URL for this graph.
    public var qdrantURL: String
    /// The connection key (`default` for the system databases).
    public var connectionKey: String

    /// The targets of `graph`: the system databases (and their pool settings) for the default
    /// graph and for graphs without a connection, else `settings.graphDatabases[key]`.
    ///
    /// - Throws: ``KTProvisionError/Code/unknownConnection`` naming the `EXTRA_DB_<KEY>_*`
    ///   variables when the connection's key is not configured.
    public static func resolve(for graph: Graph, connection: DatabaseConnectionRecord?, settings: Settings) throws -> GraphTargets {
        try resolve(connectionKey: connection?.configKey, schema: graph.isDefault ? SchemaName.public : try SchemaName(graph.schemaName), settings: settings)
    }

    /// The targets of `schema` on the system pair (`DATABASE_URL`, `WRITE_DATABASE_URL`, their
    /// pool, SSL and pooler settings, the global Qdrant).
    public static func system(schema: SchemaName, settings: Settings) -> GraphTargets {
        GraphTargets(
            graphDatabaseURL: settings.databaseURL, writeDatabaseURL: settings.writeDatabaseURL,
            graphSSLMode: settings.dbSSLMode, writeSSLMode: settings.effectiveWriteSSLMode,
            graphPool: settings.graphPool, writePool: settings.writePool,
            graphThroughPooler: settings.dbPgBouncer, writeThroughPooler: settings.writeDBPgBouncer,
            schema: schema, qdrantURL: settings.qdrant.url, connectionKey: GraphDatabases.defaultKey)
    }

    /// The targets of `schema` in the pair `connectionKey`: the system databases for `nil` or
    /// `default` (``GraphDatabases/isSystemKey(_:)``), else
    /// `settings.graphDatabases[connectionKey]` (the one place a pair's settings become targets).
    ///
    /// - Throws: ``KTProvisionError/Code/unknownConnection`` naming the `EXTRA_DB_<KEY>_*`
    ///   variables when the key is not configured.
    public static func resolve(connectionKey: String?, schema: SchemaName, settings: Settings) throws -> GraphTargets {
        guard let connectionKey, !GraphDatabases.isSystemKey(connectionKey) else { return system(schema: schema, settings: settings) }
        let entry: GraphDatabaseConfig
        do {
            entry = try settings.graphDatabase(forKey: connectionKey)
        } catch {
            throw KTProvisionError(code: .unknownConnection, message: error.detail)
        }
        return GraphTargets(
            graphDatabaseURL: entry.graphDatabaseURL, writeDatabaseURL: entry.writeDatabaseURL,
            graphSSLMode: settings.dbSSLMode, writeSSLMode: settings.effectiveWriteSSLMode,
            graphPool: entry.graphPool, writePool: entry.writePool,
            graphThroughPooler: entry.graphPgBouncer, writeThroughPooler: entry.writePgBouncer,
            schema: schema, qdrantURL: entry.qdrantURL ?? settings.qdrant.url, connectionKey: connectionKey)
    }

    /// The targets of `graph`, looking up its `database_connections` row through `repository`.
    ///
    /// - Throws: ``KTProvisionError/Code/unknownConnection`` when the row no longer exists or its
    ///   key is not configured in this process.
    public static func resolve(for graph: Graph, repository: GraphRepository, settings: Settings) async throws -> GraphTargets {
        var connection: DatabaseConnectionRecord?
        if let id = graph.databaseConnectionID {
            guard let row = try await repository.databaseConnection(id: id) else {
                throw KTProvisionError(code: .unknownConnection, message: "the database connection of graph '\(graph.slug)' no longer exists")
            }
            connection = row
        }
        return try resolve(for: graph, connection: connection, settings: settings)
    }

    /// The graph-db as a pool endpoint.
    public var graphEndpoint: DatabaseEndpoint {
        DatabaseEndpoint(role: .graph, url: graphDatabaseURL, sslMode: graphSSLMode, pool: graphPool, throughPooler: graphThroughPooler)
    }

    /// The write-db as a pool endpoint.
    public var writeEndpoint: DatabaseEndpoint {
        DatabaseEndpoint(role: .write, url: writeDatabaseURL, sslMode: writeSSLMode, pool: writePool, throughPooler: writeThroughPooler)
    }

    /// A one-off connection to the graph-db, reported to the server as `application` (never
    /// with named prepared statements: a one-off connection gains nothing from them).
    public func graphConnection(application: String) -> PostgresConnection.Configuration {
        graphEndpoint.oneOffConnection(application: application)
    }

    /// A one-off connection to the write-db, reported to the server as `application` (never
    /// with named prepared statements).
    public func writeConnection(application: String) -> PostgresConnection.Configuration {
        writeEndpoint.oneOffConnection(application: application)
    }

    /// Runs `body` with one-off connections to the graph-db and the write-db, closed afterwards.
    public func withConnections<T: Sendable>(
        application: String, logger: Logger, _ body: (_ graphDB: PostgresConnection, _ writeDB: PostgresConnection) async throws -> T
    ) async throws -> T {
        // Both connections open at the same time (each pays its own authentication round trips).
        async let graphOpened = Self.open(graphConnection(application: application), logger: logger)
        async let writeOpened = Self.open(writeConnection(application: application), logger: logger)
        let (graphResult, writeResult) = await (graphOpened, writeOpened)
        let graphDB: PostgresConnection, writeDB: PostgresConnection
        do {
            graphDB = try graphResult.get()
        } catch {
            if case .success(let opened) = writeResult { await opened.close() }
            throw error
        }
        do {
            writeDB = try writeResult.get()
        } catch {
            await graphDB.close()
            throw error
        }
        do {
            let value = try await body(graphDB, writeDB)
            await graphDB.close()
            await writeDB.close()
            return value
        } catch {
            await graphDB.close()
            await writeDB.close()
            throw error
        }
    }

    private static func open(_ configuration: PostgresConnection.Configuration, logger: Logger) async -> Result<PostgresConnection, any Error> {
        do { return .success(try await PostgresConnection.connect(configuration: configuration, logger: logger)) } catch { return .failure(error) }
    }

    /// The Qdrant client for this graph: the shared global client when ``qdrantURL`` names the
    /// global Qdrant (compared without trailing slashes), else a dedicated client the caller
    /// closes (`isDedicated`).
    public func qdrantClient(settings: Settings, logger: Logger) throws -> (client: QdrantClient, isDedicated: Bool) {
        if QdrantClient.sameServer(qdrantURL, settings.qdrant.url) {
            return (try QdrantClient.shared(configuration: settings.qdrant, logger: logger), false)
        }
        return (try makeQdrantClient(url: qdrantURL, configuration: settings.qdrant, logger: logger), true)
    }
}
