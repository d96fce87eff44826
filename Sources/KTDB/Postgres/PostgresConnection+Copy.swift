public import Logging

/// The wire format of a `COPY`.
public enum CopyFormat: String, Sendable {
    /// PostgreSQL's binary format: exact and fastest; read back by a server of the same major
    /// version or newer.
    case binary
    /// The text format (tab-separated, `\N` for NULL).
    case text
}

/// Writes the data of a `COPY FROM STDIN` (see ``PostgresConnection/copyIn(_:columns:format:logger:from:)``).
public struct CopyWriter: Sendable {
    let connection: PostgresConnection

    /// Sends `bytes` (any slice of the stream: rows may be split across calls). Returns when
    /// the connection has sent them, so a fast producer waits for the network.
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        _ = try await connection.runCopy(.copyWrite(bytes))
    }
}

extension PostgresConnection {
    /// Streams a table out with `COPY … TO STDOUT`, handing `consume` chunks of up to about
    /// 512 KiB as they arrive; the server waits while `consume` runs (no unbounded buffering).
    ///
    /// Through PgBouncer in transaction mode this is one statement, as any other. Run it in a
    /// transaction (``withTransaction(logger:_:)``) to read several tables in one snapshot.
    ///
    /// - Parameters:
    ///   - table: The table; its name is quoted as an identifier.
    ///   - columns: The columns, in this order (validated identifiers); all when nil.
    /// - Returns: The number of rows copied.
    /// - Throws: ``KTDBError``; if `consume` throws, its error, and the connection is closed
    ///   (a `COPY TO STDOUT` cannot be stopped midway).
    @discardableResult
    public func copyOut(
        _ table: TableName, columns: [String]? = nil, format: CopyFormat = .binary, logger: Logger,
        into consume: ([UInt8]) async throws -> Void
    ) async throws -> Int {
        _ = try await runCopy(.copyStart(try Self.copySQL(table, columns: columns, format: format, direction: "TO STDOUT")))
        while true {
            let results: [PostgresResult]
            results = try await runCopy(.copyRead)
            if let data = results.first?.copyData, !data.isEmpty {
                do {
                    try await consume(data)
                } catch {
                    abandonCopy()
                    throw error
                }
            }
            if results.count > 1 {
                logger.debug("COPY TO STDOUT done", metadata: ["kt.db.table": "\(table)", "kt.db.rows": "\(results[1].affectedRows)"])
                return results[1].affectedRows
            }
        }
    }

    /// Loads a table with `COPY … FROM STDIN` from what `produce` writes.
    ///
    /// - Returns: The number of rows copied.
    /// - Throws: ``KTDBError`` (the server's, for data it rejects); if `produce` throws, the
    ///   `COPY` is aborted (nothing of it stays) and `produce`'s error is rethrown.
    @discardableResult
    public func copyIn(
        _ table: TableName, columns: [String]? = nil, format: CopyFormat = .binary, logger: Logger,
        from produce: (CopyWriter) async throws -> Void
    ) async throws -> Int {
        _ = try await runCopy(.copyStart(try Self.copySQL(table, columns: columns, format: format, direction: "FROM STDIN")))
        do {
            try await produce(CopyWriter(connection: self))
        } catch {
            // The server rolls the COPY back; its "COPY from stdin failed" error is expected.
            _ = try? await runCopy(.copyEnd(error: "aborted by the client"))
            throw error
        }
        let rows = try await runCopy(.copyEnd(error: nil)).last?.affectedRows ?? 0
        logger.debug("COPY FROM STDIN done", metadata: ["kt.db.table": "\(table)", "kt.db.rows": "\(rows)"])
        return rows
    }

    static func copySQL(_ table: TableName, columns: [String]?, format: CopyFormat, direction: String) throws(KTDBError) -> String {
        var sql = "COPY \(table.sql)"
        if let columns {
            let names = try columns.map { column throws(KTDBError) in
                do throws(KTDBError) {
                    return try TableName(validating: column, in: .public).name
                } catch {
                    throw KTDBError(code: .invalidArgument, message: "invalid column name: only a-z, 0-9 and _ are allowed, at most 63 bytes")
                }
            }
            sql += " (" + names.map { "\"\($0)\"" }.joined(separator: ", ") + ")"
        }
        return sql + " \(direction) WITH (FORMAT \(format.rawValue))"
    }
}
