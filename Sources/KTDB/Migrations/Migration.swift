/// One versioned, embedded SQL migration.
public struct Migration: Sendable, Hashable {
    /// The version, unique and increasing within its set.
    public let version: Int
    /// A short name, recorded with the version.
    public let name: String
    /// The SQL script. It runs with `search_path` set to the target schema and must not
    /// qualify tables or indexes with a schema.
    public let sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// An ordered set of migrations for one kind of schema.
public struct MigrationSet: Sendable, Hashable {
    /// The set's name, recorded in the version table (`control-plane`, `graph-db`, `write-db`).
    public let name: String
    /// The migrations, ordered by version.
    public let migrations: [Migration]
    /// Whether the set builds trigram indexes, so `pg_trgm` is created first when available.
    public let usesTrigram: Bool

    /// Creates a set; migrations are sorted by version.
    public init(name: String, usesTrigram: Bool = false, migrations: [Migration]) {
        self.name = name
        self.usesTrigram = usesTrigram
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The highest version in the set.
    public var latestVersion: Int { migrations.last?.version ?? 0 }
}
