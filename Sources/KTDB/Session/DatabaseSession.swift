public import Logging

/// A handle for running work against one pool, bound to one schema.
///
/// A session bound to schema `S` (any schema but `public`) runs
/// `SET LOCAL search_path TO "S"` (the schema alone: a table missing there is an error, never another schema's table) as the first statement of every transaction. The
/// schema is never sent as a startup parameter, so this works through PgBouncer in transaction
/// mode, where consecutive transactions may run on different server connections.
///
/// Sessions are cheap values: create one per graph and schema and share it.
public struct DatabaseSession: Sendable {
    /// The pool connections come from.
    public let pool: PostgresConnectionPool
    /// The schema the session is bound to; ``SchemaName/public`` sets no `search_path`.
    public let schema: SchemaName

    /// Creates a session on `pool` bound to `schema`.
    public init(pool: PostgresConnectionPool, schema: SchemaName = .public) {
        self.pool = pool
        self.schema = schema
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// - Throws: what `body` throws, or ``KTDBError`` from `BEGIN`/`COMMIT`. If a statement
    ///   failed inside `body` and its error was caught, the transaction is rolled back and a
    ///   ``KTDBError`` with SQLSTATE `25P02` is thrown instead of a silent non-commit.
    @discardableResult
    public func withTransaction<T: Sendable>(
        logger: Logger,
        _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        try await withTransaction(setup: nil, logger: logger, body)
    }

    /// Runs `body` in a transaction whose first round trip also runs `setup`: transaction-local
    /// settings (`SET LOCAL …`) written as a literal, so no value reaches SQL text at run time.
    /// For the SDK's own modules; the public form is ``withTransaction(logger:_:)``.
    @discardableResult
    package func withTransaction<T: Sendable>(
        setup: StaticString?, logger: Logger, _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        try await pool.withConnection(logger: logger) { try await $0.transaction(schema: schema, setup: setup, logger: logger, body) }
    }

    /// Runs one statement. In the `public` schema it runs in autocommit mode (one round trip);
    /// in any other schema it runs in a transaction of its own after a transaction-local
    /// `search_path` setting, both sent in one pipeline (still one round trip; the pipeline's
    /// implicit transaction ends at its sync, so nothing outlives the statement).
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        if schema.isPublic {
            return try await pool.withConnection(logger: logger) { try await $0.query(query, logger: logger) }
        }
        let setup: PostgresQuery = "SELECT set_config('search_path', \(schema.quoted), true)"
        return try await pool.withConnection(logger: logger) { try await $0.query(query, after: [setup], logger: logger) }
    }
}
