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
    let depth: Int

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
        let nested = PostgresTransaction(connection: connection, logger: logger, depth: depth + 1)
        do {
            let value = try await body(nested)
            if connection.isInFailedTransaction {
                try await connection.execute(simple: "ROLLBACK TO SAVEPOINT \(name); RELEASE SAVEPOINT \(name)", logger: logger)
                throw KTDBError(code: .server, message: "a statement inside the savepoint failed and its error was swallowed", sqlState: "25P02")
            }
            try await connection.execute(simple: "RELEASE SAVEPOINT \(name)", logger: logger)
            return value
        } catch {
            try await connection.execute(simple: "ROLLBACK TO SAVEPOINT \(name); RELEASE SAVEPOINT \(name)", logger: logger)
            throw error
        }
    }
}
