public import Foundation
public import KTCore
public import KTDB
public import KTGraph
public import KTQdrant

/// Every storage setting of Knowledge Tree: the system database pair, pools, named external
/// database pairs, Qdrant, embeddings and sync.
///
/// `Settings` is a plain value: build it in code with ``init()`` and change fields, or load it
/// with ``load(environment:overrides:logger:)`` (see `Settings+Loading.swift` for the keys).
/// Its ``description`` never shows a password or API key.
public struct Settings: Sendable, Hashable, CustomStringConvertible {
    /// System graph-db: control plane and the default graph (`DATABASE_URL`).
    public var databaseURL: DatabaseURL
    /// System write-db (`WRITE_DATABASE_URL`).
    public var writeDatabaseURL: DatabaseURL
    /// `sslmode` for graph-db connections whose URL names none (`DB_SSLMODE`; `nil`: libpq's default).
    public var dbSSLMode: SSLMode?
    /// `sslmode` for write-db connections whose URL names none (`WRITE_DB_SSLMODE`; falls back to ``dbSSLMode``).
    public var writeDBSSLMode: SSLMode?
    /// System graph-db pool (`DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, `DB_POOL_TIMEOUT`, `DB_POOL_RECYCLE`).
    public var graphPool: PoolSettings
    /// System write-db pool (`WRITE_DB_POOL_SIZE`, `WRITE_DB_MAX_OVERFLOW`, `WRITE_DB_POOL_TIMEOUT`, `WRITE_DB_POOL_RECYCLE`).
    public var writePool: PoolSettings
    /// Whether the system graph-db is reached through a transaction-mode pooler such as
    /// PgBouncer (`DB_PGBOUNCER`, default `false`): nothing session-scoped is then sent to it
    /// (no named prepared statements, no `LISTEN`, no session advisory lock).
    public var dbPgBouncer: Bool
    /// Whether the system write-db is reached through a transaction-mode pooler
    /// (`WRITE_DB_PGBOUNCER`, default `true`, as the original always put write-db behind PgBouncer).
    public var writeDBPgBouncer: Bool
    /// Named external database pairs, keyed by connection key. Never holds ``GraphDatabases/defaultKey``.
    public var graphDatabases: [String: GraphDatabaseConfig]
    /// The global Qdrant client's configuration, KTQdrant's own type (`QDRANT_URL`, default
    /// `http://localhost:6333`; `QDRANT_TIMEOUT`, `QDRANT_TLS`, `QDRANT_API_KEY`).
    public var qdrant: QdrantClient.Configuration
    /// Vector size of every Qdrant collection (`EMBEDDING_DIMENSIONS`, default 3072).
    public var embeddingDimensions: Int
    /// Base URL of an OpenAI-compatible embeddings API, such as `https://api.openai.com/v1`
    /// (`EMBEDDING_BASE_URL`, `http` or `https`). `nil` (the default) means the deterministic
    /// local embedder: no network, for development, tests and demos.
    public var embeddingBaseURL: URL?
    /// The embedding model asked for (`EMBEDDING_MODEL`, default `text-embedding-3-large`, whose
    /// vectors have the default 3072 dimensions).
    public var embeddingModel: String
    /// The embeddings API's key, sent as a bearer token (`EMBEDDING_API_KEY`; `nil`: none).
    public var embeddingAPIKey: Secret?
    /// Whether servers migrate at startup (`RUN_MIGRATIONS_ON_STARTUP`, default true).
    public var runMigrationsOnStartup: Bool
    /// How many graphs' schemas a migrate-all migrates at once on each database
    /// (`MIGRATION_PARALLELISM`, default 4).
    public var migrationParallelism: Int
    /// How many PostgreSQL event loops (threads) the process runs (`KT_PG_EVENT_LOOPS`, 1–64;
    /// `nil`: one per processor). Set before the first connection.
    public var postgresEventLoops: Int?
    /// The write-db → graph-db sync.
    public var sync: SyncSettings
    /// Problems found while loading that did not stop the load (see ``validate()``).
    public var loadIssues: [SettingsIssue]

    /// The default system graph-db URL: `postgresql://kt:localdev@localhost:5432/knowledge_tree`.
    public static let defaultDatabaseURL = DatabaseURL(
        host: "localhost", port: 5432, user: "kt", password: Secret("localdev"), database: "knowledge_tree")
    /// The default system write-db URL: `postgresql://kt:localdev@localhost:5434/knowledge_tree_write`.
    public static let defaultWriteDatabaseURL = DatabaseURL(
        host: "localhost", port: 5434, user: "kt", password: Secret("localdev"), database: "knowledge_tree_write")

    /// Settings with every default of the original system.
    public init() {
        self.databaseURL = Self.defaultDatabaseURL
        self.writeDatabaseURL = Self.defaultWriteDatabaseURL
        self.dbSSLMode = nil
        self.writeDBSSLMode = nil
        self.graphPool = .graphDefault
        self.writePool = .writeDefault
        self.dbPgBouncer = false
        self.writeDBPgBouncer = true
        self.graphDatabases = [:]
        self.qdrant = QdrantClient.Configuration(url: "http://localhost:6333")
        self.embeddingDimensions = 3072
        self.embeddingBaseURL = nil
        self.embeddingModel = "text-embedding-3-large"
        self.embeddingAPIKey = nil
        self.runMigrationsOnStartup = true
        self.migrationParallelism = 4
        self.postgresEventLoops = nil
        self.sync = SyncSettings()
        self.loadIssues = []
    }

    /// The `sslmode` for write-db connections: ``writeDBSSLMode``, else ``dbSSLMode``.
    public var effectiveWriteSSLMode: SSLMode? { writeDBSSLMode ?? dbSSLMode }

    /// Looks up a named external database pair.
    ///
    /// - Throws: ``KTConfigError`` naming the `EXTRA_DB_<KEY>_*` variables when the key is not configured,
    ///   or ``KTConfigError/Code/reservedKey`` for ``GraphDatabases/defaultKey``.
    public func graphDatabase(forKey key: String) throws(KTConfigError) -> GraphDatabaseConfig {
        if key == GraphDatabases.defaultKey {
            throw KTConfigError(code: .reservedKey, key: key, detail: "'\(key)' names the system databases, not a graph_databases entry")
        }
        guard let config = graphDatabases[key] else {
            let envName = "EXTRA_DB_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
            throw KTConfigError(
                code: .invalidValue, key: key,
                detail:
                    "connection key '\(key)' is not configured; set \(envName)_GRAPH_HOST, \(envName)_GRAPH_DATABASE, \(envName)_WRITE_HOST and \(envName)_WRITE_DATABASE (or GRAPH_DATABASES / graph_databases in the YAML file)"
            )
        }
        return config
    }

    /// Checks the settings as a whole and returns every problem found, including ``loadIssues``.
    ///
    /// An empty array means the settings are consistent.
    public func validate() -> [SettingsIssue] {
        var issues = loadIssues
        if graphDatabases[GraphDatabases.defaultKey] != nil {
            issues.append(SettingsIssue(key: "graph_databases.\(GraphDatabases.defaultKey)", message: "the key '\(GraphDatabases.defaultKey)' is reserved for the system databases"))
        }
        let pools: [(String, PoolSettings)] =
            [
                ("db_pool", graphPool), ("write_db_pool", writePool),
            ]
            + graphDatabases.keys.sorted().flatMap { key in
                [("graph_databases.\(key).graph_pool", graphDatabases[key]!.graphPool), ("graph_databases.\(key).write_pool", graphDatabases[key]!.writePool)]
            }
        for (name, pool) in pools {
            if pool.size < 1 { issues.append(SettingsIssue(key: name, message: "pool size must be at least 1")) }
            if pool.maxOverflow < 0 { issues.append(SettingsIssue(key: name, message: "max overflow must not be negative")) }
            if pool.timeout <= .zero { issues.append(SettingsIssue(key: name, message: "pool timeout must be positive")) }
        }
        if embeddingDimensions < 1 { issues.append(SettingsIssue(key: "embedding_dimensions", message: "must be at least 1")) }
        if let url = embeddingBaseURL, !Self.isHTTPURL(url) {
            issues.append(SettingsIssue(key: "embedding_base_url", message: "must be an http or https URL with a host"))
        }
        if embeddingBaseURL != nil, embeddingModel.trimmingCharacters(in: .whitespaces).isEmpty {
            issues.append(SettingsIssue(key: "embedding_model", message: "must name a model when embedding_base_url is set"))
        }
        if sync.batchSize < 1 { issues.append(SettingsIssue(key: "sync_batch_size", message: "must be at least 1")) }
        if sync.parallelism < 1 { issues.append(SettingsIssue(key: "sync_parallelism", message: "must be at least 1")) }
        if migrationParallelism < 1 { issues.append(SettingsIssue(key: "migration_parallelism", message: "must be at least 1")) }
        if let loops = postgresEventLoops, !(1...64).contains(loops) {
            issues.append(SettingsIssue(key: "kt_pg_event_loops", message: "must be 1 to 64"))
        }
        return issues
    }

    /// A summary with every password and API key redacted.
    public var description: String {
        let extra = graphDatabases.keys.sorted().map { "\($0): \(graphDatabases[$0]!)" }.joined(separator: ", ")
        return "Settings(databaseURL: \(databaseURL), writeDatabaseURL: \(writeDatabaseURL), "
            + "dbSSLMode: \(dbSSLMode?.rawValue ?? "-"), writeDBSSLMode: \(writeDBSSLMode?.rawValue ?? "-"), "
            + "graphDatabases: [\(extra)], qdrant: \(qdrant), embeddingDimensions: \(embeddingDimensions), "
            + "embeddings: \(embeddingBaseURL.map { "\($0.scheme ?? "?")://\($0.host ?? "?") \(embeddingModel)" } ?? "local")"
            + "\(embeddingAPIKey == nil ? "" : " (API key set)"))"
    }

    /// Whether `url` is an `http` or `https` URL with a host.
    static func isHTTPURL(_ url: URL) -> Bool {
        ["http", "https"].contains(url.scheme?.lowercased() ?? "") && !(url.host ?? "").isEmpty
    }
}
