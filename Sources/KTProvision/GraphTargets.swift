public import KTConfig
public import KTDB

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
    /// graph-db pool settings for this graph.
    public var graphPool: PoolSettings
    /// write-db pool settings for this graph.
    public var writePool: PoolSettings
    /// The schema in both databases (`public` for the default graph).
    public var schema: SchemaName
    /// The Qdrant REST URL for this graph.
    public var qdrantURL: String
    /// The connection key (`default` for the system databases).
    public var connectionKey: String

    /// The targets of `graph`: the system databases for the default graph and for graphs
    /// without a connection (multigraph pools for the latter), else `settings.graphDatabases[key]`.
    ///
    /// - Throws: ``KTProvisionError/Code/unknownConnection`` naming the `EXTRA_DB_<KEY>_*`
    ///   variables when the connection's key is not configured.
    public static func resolve(for graph: Graph, connection: DatabaseConnectionRecord?, settings: Settings) throws -> GraphTargets {
        let schema = graph.isDefault ? SchemaName.public : try SchemaName(graph.schemaName)
        guard let connection else {
            return GraphTargets(
                graphDatabaseURL: settings.databaseURL, writeDatabaseURL: settings.writeDatabaseURL,
                graphSSLMode: settings.dbSSLMode, writeSSLMode: settings.effectiveWriteSSLMode,
                graphPool: graph.isDefault ? settings.graphPool : settings.multigraphGraphPool,
                writePool: graph.isDefault ? settings.writePool : settings.multigraphWritePool,
                schema: schema, qdrantURL: settings.qdrant.url, connectionKey: GraphDatabases.defaultKey)
        }
        let entry: GraphDatabaseConfig
        do {
            entry = try settings.graphDatabase(forKey: connection.configKey)
        } catch {
            throw KTProvisionError(code: .unknownConnection, message: error.detail)
        }
        return GraphTargets(
            graphDatabaseURL: entry.graphDatabaseURL, writeDatabaseURL: entry.writeDatabaseURL,
            graphSSLMode: settings.dbSSLMode, writeSSLMode: settings.effectiveWriteSSLMode,
            graphPool: entry.graphPool, writePool: entry.writePool,
            schema: schema, qdrantURL: entry.qdrantURL ?? settings.qdrant.url, connectionKey: connection.configKey)
    }
}
