public import Logging

/// Anything that runs one statement: a connection, a session (one transaction per statement
/// when schema-bound), or a transaction in progress. Repositories are built on it, so the
/// caller decides whether several calls share a transaction.
public protocol PostgresQueryRunner: Sendable {
    /// Runs one statement and returns its rows.
    @discardableResult
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult

    /// Runs `body` in a transaction: a session or a connection opens (and commits or rolls back)
    /// a new one; a transaction in progress runs `body` inside itself.
    func withTransaction<T: Sendable>(logger: Logger, _ body: (PostgresTransaction) async throws -> T) async throws -> T
}

extension PostgresConnection: PostgresQueryRunner {
    /// Runs `query` on this connection.
    public func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await self.query(query, logger: logger)
    }

    /// Runs `body` between `BEGIN` and `COMMIT` on this connection (`ROLLBACK` when it throws).
    public func withTransaction<T: Sendable>(logger: Logger, _ body: (PostgresTransaction) async throws -> T) async throws -> T {
        try await transaction(schema: .public, logger: logger, body)
    }

    /// Opens a transaction bound to `schema` (`SET LOCAL search_path` unless `public`), runs
    /// `body` in it, and commits, or rolls back when `body` throws.
    /// `setup` (transaction-local settings, a literal) goes in the same round trip as `BEGIN`.
    func transaction<T: Sendable>(
        schema: SchemaName, setup: StaticString? = nil, logger: Logger, _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        var begin = schema.isPublic ? "BEGIN" : "BEGIN; SET LOCAL search_path TO \(schema.quoted)"
        if let setup { begin += "; \(setup)" }
        try await execute(simple: begin, logger: logger)
        let transaction = PostgresTransaction(connection: self, logger: logger, schema: schema, depth: 0)
        return try await guarded(commit: "COMMIT", rollback: "ROLLBACK", logger: logger) { try await body(transaction) }
    }
}

extension DatabaseSession: PostgresQueryRunner {
    /// Runs `query` through ``query(_:logger:)``.
    public func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await self.query(query, logger: logger)
    }
}

extension PostgresTransaction: PostgresQueryRunner {
    /// Runs `query` inside the transaction.
    public func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await self.query(query)
    }

    /// Runs `body` inside this transaction (the caller owns commit and rollback).
    public func withTransaction<T: Sendable>(logger: Logger, _ body: (PostgresTransaction) async throws -> T) async throws -> T {
        try await body(self)
    }
}
