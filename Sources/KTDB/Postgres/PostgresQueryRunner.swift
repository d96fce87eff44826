public import Logging

/// Anything that runs one statement: a connection, a session (one transaction per statement
/// when schema-bound), or a transaction in progress. Repositories are built on it, so the
/// caller decides whether several calls share a transaction.
public protocol PostgresQueryRunner: Sendable {
    /// Runs one statement and returns its rows.
    @discardableResult
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult
}

extension PostgresConnection: PostgresQueryRunner {
    /// Runs `query` on this connection.
    public func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await self.query(query, logger: logger)
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
}
