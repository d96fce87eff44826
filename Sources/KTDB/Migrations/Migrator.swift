public import Logging

/// Applies migration sets to a schema on the connection it is given (never a connection it
/// picks itself), so a graph living on an external database is migrated there.
///
/// - Each schema has a version table `kt_schema_migrations` (set, version, name, applied_at).
/// - Each migration runs in its own transaction with `SET LOCAL search_path TO <schema>, public`,
///   holding a transaction-level advisory lock for that schema, so two processes cannot migrate
///   the same schema at once and the lock works through PgBouncer in transaction mode.
/// - Applying is idempotent: applied versions are skipped; a fully migrated schema costs one query.
/// - `pg_trgm` is created in `public` (if the server has it) before a set that uses it.
public struct Migrator: Sendable {
    /// What one ``migrate(_:schema:on:logger:)`` call applied.
    public struct Report: Sendable, Hashable {
        /// `(set, version)` of every migration applied, in order.
        public var applied: [AppliedMigration]
    }

    /// One applied migration.
    public struct AppliedMigration: Sendable, Hashable {
        /// The set's name.
        public var set: String
        /// The version.
        public var version: Int
        /// The migration's name.
        public var name: String
    }

    private static let versionTable = "kt_schema_migrations"

    /// Creates `schema` if it does not exist (one idempotent statement).
    public static func createSchemaIfNotExists(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws {
        guard !schema.isPublic else { return }
        do {
            try await connection.execute(simple: "CREATE SCHEMA IF NOT EXISTS \(schema.quoted)", logger: logger)
        } catch let error as KTDBError where error.sqlState == "23505" || error.sqlState == "42P06" {
            // Another process created it between our check and our insert: the schema exists, as wanted.
        }
    }

    /// Whether `schema` exists on the connection's database.
    public static func schemaExists(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let result = try await connection.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schema.rawValue)", logger: logger)
        return !result.rows.isEmpty
    }

    /// The versions of `set` already applied to `schema` (empty when the version table is missing).
    public static func appliedVersions(of set: MigrationSet, schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> Set<Int> {
        let exists = try await connection.query(
            "SELECT 1 FROM pg_tables WHERE schemaname = \(schema.rawValue) AND tablename = \(versionTable)", logger: logger)
        guard !exists.rows.isEmpty else { return [] }
        let rows = try await connection.query(
            "SELECT version FROM \(identifier: schema).\(unsafeRaw: versionTable) WHERE migration_set = \(set.name)", logger: logger)
        return Set(try rows.rows.map { row throws(KTDBError) in try row.decode(0, as: Int.self) })
    }

    /// Applies the pending migrations of each set, in order, to `schema`.
    ///
    /// The schema must exist (see ``createSchemaIfNotExists(_:on:logger:)``).
    ///
    /// - Throws: ``KTDBError/Code/migrationFailed`` naming the set and version; that
    ///   migration's transaction is rolled back and earlier ones stay applied.
    @discardableResult
    public static func migrate(_ sets: [MigrationSet], schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> Report {
        var logger = logger
        logger[metadataKey: "kt.schema"] = "\(schema)"
        var report = Report(applied: [])
        guard try await schemaExists(schema, on: connection, logger: logger) else {
            throw KTDBError(code: .migrationFailed, message: "schema '\(schema)' does not exist on this database")
        }
        for set in sets {
            let applied = try await appliedVersions(of: set, schema: schema, on: connection, logger: logger)
            let pending = set.migrations.filter { !applied.contains($0.version) }
            guard !pending.isEmpty else { continue }
            if set.usesTrigram { await ensureTrigram(on: connection, logger: logger) }
            for migration in pending {
                if try await apply(migration, of: set, schema: schema, on: connection, logger: logger) {
                    report.applied.append(AppliedMigration(set: set.name, version: migration.version, name: migration.name))
                }
            }
        }
        return report
    }

    /// Applies one migration unless another process applied it first; returns whether it ran.
    private static func apply(_ migration: Migration, of set: MigrationSet, schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var logger = logger
        logger[metadataKey: "kt.migration"] = "\(set.name)/\(migration.version)"
        do {
            try await connection.execute(simple: "BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('kt-migrate'), hashtext(\(schema.rawValue)))", logger: logger)
            try await connection.execute(
                simple: """
                    SET LOCAL search_path TO \(schema.quoted);
                    CREATE TABLE IF NOT EXISTS \(schema.quoted).\(versionTable) (
                        migration_set varchar(100) NOT NULL,
                        version integer NOT NULL,
                        name varchar(200) NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (migration_set, version)
                    )
                    """, logger: logger)
            let done = try await connection.query(
                "SELECT 1 FROM \(identifier: schema).\(unsafeRaw: versionTable) WHERE migration_set = \(set.name) AND version = \(migration.version)",
                logger: logger)
            if !done.rows.isEmpty {
                try await connection.execute(simple: "COMMIT", logger: logger)
                return false
            }
            try await connection.execute(simple: migration.sql, logger: logger)
            try await connection.query(
                "INSERT INTO \(identifier: schema).\(unsafeRaw: versionTable) (migration_set, version, name) VALUES (\(set.name), \(migration.version), \(migration.name))",
                logger: logger)
            try await connection.execute(simple: "COMMIT", logger: logger)
            logger.debug("Applied a migration")
            return true
        } catch {
            try? await connection.execute(simple: "ROLLBACK", logger: logger)
            let detail = (error as? KTDBError).map { "\($0.message) (SQLSTATE \($0.sqlState ?? "-"))" } ?? "\(error)"
            throw KTDBError(
                code: .migrationFailed,
                message: "migration \(set.name)/\(migration.version) '\(migration.name)' failed on schema '\(schema)': \(detail)",
                sqlState: (error as? KTDBError)?.sqlState)
        }
    }

    /// Creates `pg_trgm` in `public` when the server offers it; without it, trigram indexes are skipped.
    private static func ensureTrigram(on connection: PostgresConnection, logger: Logger) async {
        do {
            try await connection.execute(simple: "BEGIN", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('kt-migrate-extensions'))", logger: logger)
            let available = try await connection.query(
                "SELECT installed_version IS NOT NULL FROM pg_available_extensions WHERE name = \("pg_trgm")", logger: logger)
            if let row = available.first, try row.decode(0, as: Bool.self) == false {
                try await connection.execute(simple: "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public", logger: logger)
            }
            try await connection.execute(simple: "COMMIT", logger: logger)
        } catch {
            try? await connection.execute(simple: "ROLLBACK", logger: logger)
            logger.debug("pg_trgm is not available; trigram indexes are skipped", metadata: ["kt.error": "\(String(reflecting: error))"])
        }
    }

}
