public import Logging

/// A transaction in progress on one connection, handed to the body of
/// ``DatabaseSession/withTransaction(logger:_:)``.
///
/// Use ``withSavepoint(_:)`` around each item of a batch so one failing item rolls back alone
/// instead of aborting the whole transaction.
public struct PostgresTransaction: Sendable {
    /// The connection the transaction runs on. Do not run `COMMIT` or `ROLLBACK` on it yourself.
    public let connection: PostgresConnection
    /// The logger of the call that opened the transaction.
    public let logger: Logger
    /// The schema the transaction's `search_path` is set to: the session's schema, or
    /// ``SchemaName/public`` for a transaction opened on a connection (which leaves
    /// `search_path` as the connection has it).
    public let schema: SchemaName
    let depth: Int

    init(connection: PostgresConnection, logger: Logger, schema: SchemaName = .public, depth: Int) {
        self.connection = connection
        self.logger = logger
        self.schema = schema
        self.depth = depth
    }

    /// Runs one statement inside the transaction.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await connection.query(query, logger: logger)
    }

    /// Runs `body` inside a savepoint: if `body` throws, only its work is rolled back, the
    /// transaction stays usable, and the error is rethrown. Savepoints nest.
    @discardableResult
    public func withSavepoint<T: Sendable>(_ body: (PostgresTransaction) async throws -> T) async throws -> T {
        let name = "kt_sp_\(depth + 1)"
        try await connection.execute(simple: "SAVEPOINT \(name)", logger: logger)
        let nested = PostgresTransaction(connection: connection, logger: logger, schema: schema, depth: depth + 1)
        return try await connection.guarded(
            commit: "RELEASE SAVEPOINT \(name)", rollback: "ROLLBACK TO SAVEPOINT \(name); RELEASE SAVEPOINT \(name)", logger: logger
        ) {
            try await body(nested)
        }
    }
}

extension PostgresConnection {
    /// Runs `body`, then `commit`. If `body` throws, runs `rollback` and rethrows; if `body`
    /// swallowed a failed statement (the transaction only accepts a rollback now), runs
    /// `rollback` and throws a ``KTDBError`` with SQLSTATE `25P02` instead of committing silently.
    /// A failing `rollback` leaves the connection in a transaction, so the pool discards it.
    func guarded<T: Sendable>(commit: String, rollback: String, logger: Logger, _ body: () async throws -> T) async throws -> T {
        let value: T
        do {
            value = try await body()
        } catch {
            try? await execute(simple: rollback, logger: logger)
            throw error
        }
        if isInFailedTransaction {
            try? await execute(simple: rollback, logger: logger)
            throw KTDBError(code: .server, message: "a statement failed and its error was swallowed; rolled back", sqlState: "25P02")
        }
        try await execute(simple: commit, logger: logger)
        return value
    }
}
