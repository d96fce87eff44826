import KTCore
public import KTDB

/// One named external database pair (graph-db and write-db) a graph can live in, with its
/// optional Qdrant URL and its own pool settings.
///
/// Entries come from the `GRAPH_DATABASES` JSON variable, from `EXTRA_DB_<NAME>_*` variables,
/// or from the `graph_databases` section of the YAML file; see ``Settings``.
public struct GraphDatabaseConfig: Sendable, Hashable, CustomStringConvertible {
    /// graph-db URL (read-optimised, with foreign keys).
    public var graphDatabaseURL: DatabaseURL
    /// write-db URL (write-optimised, usually behind PgBouncer).
    public var writeDatabaseURL: DatabaseURL
    /// Qdrant URL of this pair; `nil` means the global Qdrant (``Settings/qdrant``).
    public var qdrantURL: String?
    /// graph-db pool settings (defaults 20 / 40 / 30 s / 1800 s).
    public var graphPool: PoolSettings
    /// write-db pool settings (defaults 100 / 700 / 120 s / 600 s).
    public var writePool: PoolSettings
    /// Whether the graph-db is reached through a transaction-mode pooler (`graph_pgbouncer`,
    /// `EXTRA_DB_<NAME>_GRAPH_PGBOUNCER`; default `false`).
    public var graphPgBouncer: Bool
    /// Whether the write-db is reached through a transaction-mode pooler (`write_pgbouncer`,
    /// `EXTRA_DB_<NAME>_WRITE_PGBOUNCER`; default `true`, like the system write-db).
    public var writePgBouncer: Bool

    /// Creates an entry.
    public init(
        graphDatabaseURL: DatabaseURL,
        writeDatabaseURL: DatabaseURL,
        qdrantURL: String? = nil,
        graphPool: PoolSettings = .graphDefault,
        writePool: PoolSettings = .writeDefault,
        graphPgBouncer: Bool = false,
        writePgBouncer: Bool = true
    ) {
        self.graphDatabaseURL = graphDatabaseURL
        self.writeDatabaseURL = writeDatabaseURL
        self.qdrantURL = (qdrantURL?.isEmpty ?? true) ? nil : qdrantURL
        self.graphPool = graphPool
        self.writePool = writePool
        self.graphPgBouncer = graphPgBouncer
        self.writePgBouncer = writePgBouncer
    }

    /// The entry with passwords redacted.
    public var description: String {
        "GraphDatabaseConfig(graph: \(graphDatabaseURL), write: \(writeDatabaseURL), qdrant: \(qdrantURL.map(URLRedaction.redactingUserInfo) ?? "<global>"), graphPgBouncer: \(graphPgBouncer), writePgBouncer: \(writePgBouncer))"
    }
}
