public import KTConfig
public import KTDB

/// One database a process talks to, as a pool sees it: its URL, `sslmode`, pool sizing and
/// whether a transaction-mode pooler (PgBouncer) stands in front of it.
///
/// A ``GraphSystem`` keeps one pool per endpoint identity (role, URL, `sslmode`, pooler flag),
/// whatever the number of graphs living in that database.
public struct DatabaseEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Which side of a database pair this is.
    public enum Role: String, Sendable, Hashable {
        /// The read-optimised graph-db (also the control plane for the system pair).
        case graph
        /// The write-optimised write-db.
        case write
    }

    /// The side of the pair.
    public var role: Role
    /// Where to connect.
    public var url: DatabaseURL
    /// `sslmode` used when ``url`` names none.
    public var sslMode: SSLMode?
    /// Size, overflow, timeout and recycle age of the endpoint's pool.
    public var pool: PoolSettings
    /// Whether a transaction-mode pooler stands in front of the database: then nothing
    /// session-scoped (named prepared statements among them) is ever sent to it.
    public var throughPooler: Bool

    /// Creates an endpoint.
    public init(role: Role, url: DatabaseURL, sslMode: SSLMode?, pool: PoolSettings, throughPooler: Bool) {
        self.role = role
        self.url = url
        self.sslMode = sslMode
        self.pool = pool
        self.throughPooler = throughPooler
    }

    /// The system graph-db (`DATABASE_URL`, `DB_POOL_*`, `DB_PGBOUNCER`).
    public static func systemGraph(_ settings: Settings) -> DatabaseEndpoint {
        GraphTargets.system(schema: .public, settings: settings).graphEndpoint
    }

    /// The system write-db (`WRITE_DATABASE_URL`, `WRITE_DB_POOL_*`, `WRITE_DB_PGBOUNCER`).
    public static func systemWrite(_ settings: Settings) -> DatabaseEndpoint {
        GraphTargets.system(schema: .public, settings: settings).writeEndpoint
    }

    /// What makes two endpoints the same database for pooling (pool sizing is taken from the
    /// first endpoint that opened the pool).
    struct Identity: Hashable {
        var role: Role
        var url: DatabaseURL
        var sslMode: SSLMode?
        var throughPooler: Bool
    }

    var identity: Identity { Identity(role: role, url: url, sslMode: sslMode, throughPooler: throughPooler) }

    /// Named statements are cached on direct connections only.
    var preparedStatements: PostgresConnection.PreparedStatementMode { throughPooler ? .disabled : .cached }

    /// A pooled connection's configuration. Behind a pooler a cancelled statement's connection
    /// is closed without a cancel request (see
    /// `PostgresConnection.Configuration.sendsCancelRequests`).
    func pooledConnection(application: String) -> PostgresConnection.Configuration {
        .init(
            url: url, applicationName: application, defaultSSLMode: sslMode, preparedStatements: preparedStatements,
            sendsCancelRequests: !throughPooler)
    }

    /// A one-off connection (migrations, provisioning, administration): a pooled connection's
    /// configuration, but never with named prepared statements, whatever sits in front of the
    /// database.
    public func oneOffConnection(application: String) -> PostgresConnection.Configuration {
        var configuration = pooledConnection(application: application)
        configuration.preparedStatements = .disabled
        return configuration
    }

    /// `graph-db host:port/database` (never the user or password), the pool's label.
    public var description: String {
        "\(role.rawValue)-db \(url.host):\(url.port.map(String.init) ?? "5432")/\(url.database ?? "")"
    }
}
