import CLibPQ
import KTConfig
import Foundation
public import Logging
import Synchronization

/// One PostgreSQL connection over libpq.
///
/// Every libpq call runs on the connection's own thread (never on Swift's cooperative pool);
/// callers suspend until it returns. Calls on one connection run one at a time, in order.
/// Cancelling the awaiting task sends a cancel request to the server (`PQcancel`).
///
/// Most code uses a ``PostgresConnectionPool`` and a ``DatabaseSession`` instead; a bare
/// connection is for one-off work such as provisioning.
public final class PostgresConnection: @unchecked Sendable {
    // Thread-safety: `handle`, `preparedNames` and `statementCounter` are touched only by jobs
    // on `thread`; `cancelHandle` is used with PQcancel, which libpq documents as thread-safe.
    private let thread: ConnectionThread
    private let handle: OpaquePointer
    private let cancelHandle: OpaquePointer?
    private var preparedNames: [String: String] = [:]
    private var statementCounter = 0
    private var closed = false
    /// The socket, for liveness polls from any thread while the connection is checked out and idle.
    private let socket: Int32
    /// Connection and transaction status as of the end of the last libpq job, readable without a thread hop.
    private let cachedState = Mutex(ConnectionState(healthy: true, transaction: .idle))

    struct ConnectionState {
        enum Transaction { case idle, inTransaction, failed }
        var healthy: Bool
        var transaction: Transaction
    }

    /// The configuration the connection was opened with.
    public let configuration: Configuration
    /// When the connection was opened.
    public let openedAt: ContinuousClock.Instant
    /// The server process id (`pg_backend_pid()`).
    public let backendPID: Int32

    private init(thread: ConnectionThread, handle: OpaquePointer, configuration: Configuration) {
        self.thread = thread
        self.handle = handle
        self.cancelHandle = PQgetCancel(handle)
        self.configuration = configuration
        self.openedAt = .now
        self.backendPID = PQbackendPID(handle)
        self.socket = PQsocket(handle)
    }

    /// Records libpq's view of the connection; runs on the connection's thread after every job.
    private func refreshState() {
        guard !closed else { return refreshStateAfterClose() }
        let healthy = PQstatus(handle) == CONNECTION_OK
        let transaction: ConnectionState.Transaction
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: transaction = .idle
        case PQTRANS_INERROR: transaction = .failed
        default: transaction = .inTransaction
        }
        cachedState.withLock { $0 = ConnectionState(healthy: healthy, transaction: transaction) }
    }

    /// Opens a connection.
    ///
    /// - Throws: ``KTDBError`` with code ``KTDBError/Code/connectionFailed``; its message is
    ///   libpq's, which names host and user but never the password.
    public static func connect(configuration: Configuration, logger: Logger) async throws -> PostgresConnection {
        let thread = ConnectionThread(name: "kt-pg")
        let keywords = configuration.keywords
        do {
            let connection = try await thread.run { () throws(KTDBError) -> PostgresConnection in
                let handle = try withCStringArrays(keywords.map(\.keyword), keywords.map(\.value)) { keys, values in
                    PQconnectdbParams(keys, values, 0)
                }
                guard let handle else {
                    throw KTDBError(code: .connectionFailed, message: "libpq could not allocate a connection")
                }
                guard PQstatus(handle) == CONNECTION_OK else {
                    let message = lastErrorMessage(handle)
                    PQfinish(handle)
                    throw KTDBError(code: .connectionFailed, message: message)
                }
                PQsetNoticeProcessor(handle, { _, _ in }, nil)
                return PostgresConnection(thread: thread, handle: handle, configuration: configuration)
            }
            logger.debug("Opened a PostgreSQL connection", metadata: [
                "kt.db.host": "\(configuration.url.host)", "kt.db.database": "\(configuration.url.database ?? "")",
                "kt.db.application": "\(configuration.applicationName)", "kt.db.pid": "\(connection.backendPID)",
            ])
            return connection
        } catch {
            thread.stop()
            logger.debug("Could not open a PostgreSQL connection", metadata: ["kt.db.host": "\(configuration.url.host)", "kt.error": "\(error)"])
            throw error
        }
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        nonisolated(unsafe) let handle = self.handle
        let alreadyClosed = closed
        if !alreadyClosed {
            thread.submit { PQfinish(handle) }
        }
        thread.stop()
    }

    // MARK: Queries

    /// Runs one statement with bound parameters and returns its rows.
    ///
    /// - Throws: ``KTDBError``: ``KTDBError/Code/server`` with the SQLSTATE for a rejected
    ///   statement, ``KTDBError/Code/connectionClosed`` when the connection broke.
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await cancellable {
            try await self.thread.run { () throws(KTDBError) -> PostgresResult in
                defer { self.refreshState() }
                return try self.executeOnThread(query)
            }
        }
    }

    /// Runs one or more statements without parameters through the simple query protocol
    /// (used for transaction control and migration scripts). Never pass values in `sql`.
    public func execute(simple sql: String, logger: Logger) async throws {
        try await cancellable {
            try await self.thread.run { () throws(KTDBError) in
                defer { self.refreshState() }
                let result = PQexec(self.handle, sql)
                defer { PQclear(result) }
                try self.check(result)
            }
        }
    }

    /// Whether the connection is healthy: libpq reports it open and the server has not closed
    /// the socket. With `roundTrip`, an empty statement also goes to the server and back.
    ///
    /// Without `roundTrip` this costs one `poll` and no thread hop; call it only while no
    /// other call on this connection is in flight.
    public func isAlive(roundTrip: Bool) async -> Bool {
        guard cachedState.withLock({ $0.healthy }) else { return false }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        // An idle connection that has something to read was most likely told to go away
        // (termination message or EOF): confirm with a round trip.
        let readable = poll(&descriptor, 1, 0) != 0
        guard roundTrip || readable else { return true }
        return (try? await thread.run { () throws(KTDBError) -> Bool in
            defer { self.refreshState() }
            guard !self.closed else { return false }
            let result = PQexec(self.handle, "")
            defer { PQclear(result) }
            return result != nil && PQresultStatus(result) == PGRES_EMPTY_QUERY
        }) ?? false
    }

    /// Whether the connection is open and outside any transaction (safe to hand to another user),
    /// as of the end of its last call. No thread hop.
    public var isIdleOutsideTransaction: Bool {
        cachedState.withLock { $0.healthy && $0.transaction == .idle }
    }

    /// Whether the current transaction has failed and only accepts `ROLLBACK`. No thread hop.
    var isInFailedTransaction: Bool {
        cachedState.withLock { $0.transaction == .failed }
    }

    /// Opens a connection, runs `body`, and closes it: for one-off work that must not hold a
    /// pooled connection (provisioning, migrations on a database named at run time).
    @discardableResult
    public static func withConnection<T: Sendable>(
        configuration: Configuration,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await connect(configuration: configuration, logger: logger)
        do {
            let value = try await body(connection)
            await connection.close()
            return value
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Closes the connection. Further calls fail with ``KTDBError/Code/connectionClosed``.
    public func close() async {
        _ = try? await thread.run { () throws(KTDBError) in
            guard !self.closed else { return }
            self.closed = true
            PQfinish(self.handle)
            self.refreshStateAfterClose()
        }
    }

    private func refreshStateAfterClose() {
        cachedState.withLock { $0 = ConnectionState(healthy: false, transaction: .idle) }
    }

    // MARK: Thread-confined helpers

    private func cancellable<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await body()
        } onCancel: {
            self.requestCancel()
        }
    }

    private func requestCancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    private func executeOnThread(_ query: PostgresQuery) throws(KTDBError) -> PostgresResult {
        guard !closed else { throw KTDBError(code: .connectionClosed, message: "the connection is closed") }
        let binds = query.binds
        let count = Int32(binds.count)
        let result: OpaquePointer? = try withOptionalCStrings(binds.values) { values throws(KTDBError) in
            if configuration.preparedStatements.usesNamedStatements {
                let name = try preparedName(for: query)
                return PQexecPrepared(handle, name, count, values, nil, nil, 0)
            }
            return binds.typeOIDs.withUnsafeBufferPointer { oids in
                PQexecParams(handle, query.sql, count, oids.baseAddress, values, nil, nil, 0)
            }
        }
        defer { PQclear(result) }
        do {
            try check(result)
        } catch {
            // A statement that no longer exists or whose plan went stale is prepared afresh next time.
            if error.sqlState == "26000" || error.sqlState == "0A000" { preparedNames[query.sql] = nil }
            throw error
        }
        return makeResult(result!)
    }

    private func preparedName(for query: PostgresQuery) throws(KTDBError) -> String {
        if let name = preparedNames[query.sql] { return name }
        statementCounter += 1
        let name = "kt_s\(statementCounter)"
        let result = query.binds.typeOIDs.withUnsafeBufferPointer { oids in
            PQprepare(handle, name, query.sql, Int32(query.binds.count), oids.baseAddress)
        }
        defer { PQclear(result) }
        try check(result)
        preparedNames[query.sql] = name
        return name
    }

    private func check(_ result: OpaquePointer?) throws(KTDBError) {
        guard let result else {
            throw KTDBError(code: .connectionClosed, message: lastErrorMessage(handle))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            return
        default:
            let state = field(result, diagSQLState)
            let message = field(result, diagMessagePrimary) ?? lastErrorMessage(handle)
            if PQstatus(handle) != CONNECTION_OK {
                throw KTDBError(code: .connectionClosed, message: message, sqlState: state)
            }
            throw KTDBError(code: .server, message: message, sqlState: state, serverDetail: field(result, diagMessageDetail))
        }
    }

    private func field(_ result: OpaquePointer, _ code: Int32) -> String? {
        guard let pointer = PQresultErrorField(result, code) else { return nil }
        return String(cString: pointer)
    }

    private func makeResult(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var rows: [PostgresRow] = []
        if columnCount > 0 {
            var names: [String] = []
            var oids: [UInt32] = []
            names.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                names.append(String(cString: PQfname(result, column)))
                oids.append(PQftype(result, column))
            }
            let columns = PostgresColumns(names: names, typeOIDs: oids)
            rows.reserveCapacity(rowCount)
            for row in 0..<Int32(rowCount) {
                var values: [String?] = []
                values.reserveCapacity(columnCount)
                for column in 0..<Int32(columnCount) {
                    if PQgetisnull(result, row, column) == 1 {
                        values.append(nil)
                    } else {
                        values.append(String(cString: PQgetvalue(result, row, column)))
                    }
                }
                rows.append(PostgresRow(columns: columns, values: values))
            }
        }
        let tuples = String(cString: PQcmdTuples(result))
        return PostgresResult(rows: rows, affectedRows: Int(tuples) ?? rowCount)
    }
}

// libpq's PG_DIAG_* macros are character constants, which Swift does not import.
private let diagSQLState = Int32(UInt8(ascii: "C"))
private let diagMessagePrimary = Int32(UInt8(ascii: "M"))
private let diagMessageDetail = Int32(UInt8(ascii: "D"))

private func lastErrorMessage(_ handle: OpaquePointer) -> String {
    guard let pointer = PQerrorMessage(handle) else { return "unknown libpq error" }
    return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Calls `body` with two NULL-terminated arrays of C strings that live for the call.
private func withCStringArrays<R>(
    _ first: [String], _ second: [String],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) throws(KTDBError) -> R
) throws(KTDBError) -> R {
    let a = first.map { UnsafePointer(strdup($0)) } + [nil]
    let b = second.map { UnsafePointer(strdup($0)) } + [nil]
    defer {
        for p in a { free(UnsafeMutablePointer(mutating: p)) }
        for p in b { free(UnsafeMutablePointer(mutating: p)) }
    }
    return try a.withUnsafeBufferPointer { pa throws(KTDBError) in
        try b.withUnsafeBufferPointer { pb throws(KTDBError) in try body(pa.baseAddress!, pb.baseAddress!) }
    }
}

/// Calls `body` with an array of C strings (NULL for nil) that live for the call.
private func withOptionalCStrings<R>(
    _ strings: [String?],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws(KTDBError) -> R
) throws(KTDBError) -> R {
    if strings.isEmpty { return try body(nil) }
    let pointers = strings.map { $0.map { UnsafePointer(strdup($0)) } ?? nil }
    defer { for p in pointers { free(UnsafeMutablePointer(mutating: p)) } }
    return try pointers.withUnsafeBufferPointer { buffer throws(KTDBError) in try body(buffer.baseAddress) }
}
