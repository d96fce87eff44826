import CLibPQ
import Glibc
import Synchronization

/// Connection and transaction status as of the end of the last job, shared with other threads.
final class ConnectionStateBox: Sendable {
    struct State: Sendable {
        enum Transaction: Sendable { case idle, inTransaction, failed }
        var healthy: Bool
        var transaction: Transaction
    }

    let state = Mutex(State(healthy: true, transaction: .idle))
    /// Set (once) when a cancelled task abandoned a statement in flight: a cancel request may
    /// still reach the backend, so the connection must never serve anyone again. The event
    /// loop never clears it.
    let abandoned = Atomic<Bool>(false)
}

/// A unit of work for one connection on the event loop.
struct LoopJob: Sendable {
    enum Request: Sendable {
        case query(PostgresQuery)
        /// The `setup` statements and the query in one pipeline, one round trip: up to the
        /// pipeline's sync they run as one implicit transaction, which the server commits, or
        /// rolls back when a statement fails.
        case scoped(setup: [PostgresQuery], query: PostgresQuery)
        case simple(String)
        /// A `COPY` statement (simple protocol); completes when the server is in COPY mode.
        case copyStart(String)
        /// `COPY TO STDOUT` data, up to ``LoopConnection/copyChunkLimit`` bytes: one result with
        /// the data, and a second one (the `COPY`'s own) when the copy has ended.
        case copyRead
        /// `COPY FROM STDIN` data; completes when libpq has sent it (or buffered it below its limit).
        case copyWrite([UInt8])
        /// Ends `COPY FROM STDIN` (with an error message: aborts it); completes with the `COPY`'s result.
        case copyEnd(error: String?)
        case close
    }

    let request: Request
    let completion: @Sendable (Result<[PostgresResult], KTDBError>) -> Void

    func complete(_ result: Result<[PostgresResult], KTDBError>) { completion(result) }
}

/// The loop-side state of one nonblocking libpq connection.
///
/// Thread-safety: every mutable member is used only while holding `lock` (by the submitting
/// thread or the ``PostgresEventLoop`` thread); `fd` and `stateBox` are immutable.
final class LoopConnection: @unchecked Sendable {
    let lock = Mutex(())
    enum Command {
        case simple(String)
        case params(sql: String, oids: [UInt32], values: [String?])
        case prepare(name: String, sql: String, oids: [UInt32])
        case prepared(name: String, values: [String?])
        case copyEnd(error: String?)
    }

    enum Next {
        case sendNext
        /// Pipeline mode: the next command's results follow without sending anything.
        case readNext
        case finished(LoopJob, Result<[PostgresResult], KTDBError>)
    }

    let handle: OpaquePointer
    let fd: Int32
    let stateBox: ConnectionStateBox
    /// How many statements this connection keeps prepared (0: none; later texts go unnamed).
    private let statementCapacity: Int
    private var preparedNames: [String: String] = [:]
    /// The result columns of each prepared statement, by name, reused while a result has the
    /// same names and types (a re-plan that changes them fails with `0A000` and is re-prepared).
    private var columnsByStatement: [String: PostgresColumns] = [:]
    private var statementCounter = 0

    var queue: [LoopJob] = []
    var current: LoopJob?
    var wantsWrite = false
    /// Whether the socket is watched for reading (not while `COPY TO STDOUT` data waits for a
    /// reader: the server then waits on TCP instead of libpq buffering without bound).
    var watchesRead = true
    var copyState: CopyState?
    var copyBuffer: [UInt8] = []
    /// A `copyWrite` job whose data libpq has taken, waiting for its send buffer to drain.
    var copyWriteQueued = false
    var commands: [Command] = []
    var commandIndex = 0
    private var results: [PostgresResult] = []
    private var error: KTDBError?
    var broken = false
    private var finished = false
    /// The commands are sent at once in pipeline mode, then read command by command.
    private var pipelined = false
    private var pipelineSynced = false
    /// The commands whose results the job returns (all of them outside a scoped job).
    private var collected: Range<Int> = 0..<Int.max

    init(handle: OpaquePointer, statementCapacity: Int, stateBox: ConnectionStateBox) {
        self.handle = handle
        self.fd = PQsocket(handle)
        self.statementCapacity = statementCapacity
        self.stateBox = stateBox
    }

    var isUsable: Bool { !broken && !finished }

    // MARK: Jobs

    func begin(_ job: LoopJob) {
        current = job
        commandIndex = 0
        results = []
        error = nil
        pipelined = false
        pipelineSynced = false
        collected = 0..<Int.max
        switch job.request {
        case .simple(let sql), .copyStart(let sql):
            commands = [.simple(sql)]
        case .copyRead, .copyWrite:
            commands = []
            copyWriteQueued = false
        case .copyEnd(let message):
            commands = [.copyEnd(error: message)]
        case .query(let query):
            commands = commands(for: query)
        case .scoped(let setup, let query):
            // Setup statements are prepared and reused like any other (a schema-bound statement
            // would otherwise parse its `set_config` every time).
            let control = setup.flatMap { commands(for: $0) }
            let body = commands(for: query)
            commands = control + body
            collected = control.count..<(control.count + body.count)
            pipelined = true
        case .close:
            commands = []
        }
    }

    private func commands(for query: PostgresQuery) -> [Command] {
        if let name = preparedNames[query.sql] {
            return [.prepared(name: name, values: query.binds.values)]
        } else if statementCounter >= statementCapacity {
            // Disabled, or the connection holds as many statements as it may: sent unnamed.
            return [.params(sql: query.sql, oids: query.binds.typeOIDs, values: query.binds.values)]
        } else {
            statementCounter += 1
            let name = "kt_s\(statementCounter)"
            return [.prepare(name: name, sql: query.sql, oids: query.binds.typeOIDs), .prepared(name: name, values: query.binds.values)]
        }
    }

    /// Sends the current command (in pipeline mode: every command and a sync); returns an
    /// error if libpq would not take it.
    func sendCurrentCommand() -> KTDBError? {
        guard pipelined else { return send(commands[commandIndex]) }
        guard PQenterPipelineMode(handle) == 1 else { return connectionError() }
        for command in commands {
            if let error = send(command) { return error }
        }
        return PQpipelineSync(handle) == 1 ? nil : connectionError()
    }

    private func send(_ command: Command) -> KTDBError? {
        let sent: Int32
        switch command {
        case .simple(let sql):
            sent = PQsendQuery(handle, sql)
        case .params(let sql, let oids, let values):
            sent = withCStrings(values) { pointers in
                oids.withUnsafeBufferPointer { PQsendQueryParams(handle, sql, Int32(values.count), $0.baseAddress, pointers, nil, nil, 0) }
            }
        case .prepare(let name, let sql, let oids):
            sent = oids.withUnsafeBufferPointer { PQsendPrepare(handle, name, sql, Int32(oids.count), $0.baseAddress) }
        case .prepared(let name, let values):
            sent = withCStrings(values) { PQsendQueryPrepared(handle, name, Int32(values.count), $0, nil, nil, 0) }
        case .copyEnd(let message):
            guard copyState == .into else { return KTDBError(code: .invalidArgument, message: "no COPY FROM STDIN is in progress") }
            copyState = nil
            // A copyWrite job completes only once libpq's buffer is sent, so the end always fits.
            sent = PQputCopyEnd(handle, message)
        }
        return sent == 1 ? nil : connectionError()
    }

    func flush() -> Int32 { PQflush(handle) }
    func consumeInput() -> Bool { PQconsumeInput(handle) == 1 }
    var isBusy: Bool { PQisBusy(handle) == 1 }

    /// Reads one result of the current command; `false` when the command has no more results.
    func readResult() -> Bool {
        guard let result = PQgetResult(handle) else { return false }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_PIPELINE_SYNC:
            pipelineSynced = true
            return false
        case PGRES_PIPELINE_ABORTED:
            break  // a command skipped after an earlier error, which is already recorded
        case PGRES_COPY_IN, PGRES_COPY_OUT:
            if case .copyStart = current?.request {
                // The server is in COPY mode: the job is done, data follows in later jobs.
                copyState = PQresultStatus(result) == PGRES_COPY_OUT ? .out : .into
                return false
            }
            // A COPY sent through query() or execute(simple:): the server now waits for (or
            // streams) copy data, which would keep this connection busy for good. The statement
            // fails and the connection is closed instead of returned.
            error = KTDBError(code: .invalidArgument, message: "COPY goes through copyOut/copyIn, not query(); the connection was closed")
            broken = true
            return false
        case PGRES_COPY_BOTH:
            error = KTDBError(code: .invalidArgument, message: "COPY BOTH (replication) is not supported; the connection was closed")
            broken = true
            return false
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            guard collected.contains(commandIndex), commandIndex < commands.count else { break }
            switch commands[commandIndex] {
            case .prepare: break
            case .prepared(let name, _):
                let known = columnsByStatement[name]
                let made = makeResult(result, columns: known)
                if made.columns !== known { columnsByStatement[name] = made.columns }
                results.append(made.result)
            case .simple, .params, .copyEnd:
                results.append(makeResult(result, columns: nil).result)
            }
        default:
            if error == nil { error = makeError(result) }
        }
        return true
    }

    /// Called when the current command has returned all its results.
    func advance() -> Next? {
        guard let job = current else { return nil }
        if broken {
            // Nothing more can be read or sent on this connection (an unsupported COPY).
            pipelined = false
            return finish(job, .failure(error ?? connectionError()))
        }
        if pipelined {
            if !pipelineSynced {
                // One command's results are complete; the next command's follow.
                if error == nil, commandIndex < commands.count, case .prepare(let name, let sql, _) = commands[commandIndex] { preparedNames[sql] = name }
                commandIndex += 1
                return .readNext
            }
            pipelined = false
            PQexitPipelineMode(handle)
            if let error { return finishFailed(job, error) }
            return finish(job, .success(results))
        }
        if let error { return finishFailed(job, error) }
        if case .prepare(let name, let sql, _) = commands[commandIndex] { preparedNames[sql] = name }
        commandIndex += 1
        if commandIndex < commands.count { return .sendNext }
        return finish(job, .success(results))
    }

    private func forgetStatement(_ sql: String) {
        guard let name = preparedNames.removeValue(forKey: sql) else { return }
        columnsByStatement[name] = nil
    }

    private func finishFailed(_ job: LoopJob, _ error: KTDBError) -> Next {
        if error.sqlState == "26000" || error.sqlState == "0A000" {
            // A statement that no longer exists or whose plan went stale is prepared afresh next time.
            switch job.request {
            case .query(let query): forgetStatement(query.sql)
            case .scoped(let setup, let query): for statement in setup + [query] { forgetStatement(statement.sql) }
            case .simple, .close, .copyStart, .copyRead, .copyWrite, .copyEnd: break
            }
        }
        return finish(job, .failure(error))
    }

    func finish(_ job: LoopJob, _ result: Result<[PostgresResult], KTDBError>) -> Next {
        current = nil
        var result = result
        if case .copyRead = job.request {
            // The data read, then (at the end of the COPY) the COPY's own result.
            if case .success(let final) = result { result = .success([PostgresResult(rows: [], affectedRows: 0, copyData: copyBuffer)] + final) }
            copyBuffer = []
        }
        results = []
        refreshState()
        return .finished(job, result)
    }

    /// Reads and drops whatever an idle connection received (notices, notifications, or the
    /// server's goodbye), then updates the shared state.
    func discardIdleInput() {
        // During a COPY, results are the COPY's own: they are read by its next job.
        if copyState == nil {
            while PQisBusy(handle) == 0, let result = PQgetResult(handle) { PQclear(result) }
        }
        while let notification = PQnotifies(handle) { PQfreemem(notification) }
        if PQstatus(handle) != CONNECTION_OK { broken = true }
        refreshState()
    }

    func markBroken() {
        broken = true
        refreshState()
    }

    /// Closes the libpq connection (once).
    func finish() {
        guard !finished else { return }
        finished = true
        PQfinish(handle)
        refreshState()
    }

    func connectionError() -> KTDBError {
        KTDBError(code: .connectionClosed, message: finished ? "the connection is closed" : libpqErrorMessage(handle))
    }

    private func refreshState() {
        guard isUsable, PQstatus(handle) == CONNECTION_OK else {
            stateBox.state.withLock { $0 = .init(healthy: false, transaction: .idle) }
            return
        }
        let transaction: ConnectionStateBox.State.Transaction
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: transaction = .idle
        case PQTRANS_INERROR: transaction = .failed
        default: transaction = .inTransaction
        }
        stateBox.state.withLock { $0 = .init(healthy: true, transaction: transaction) }
    }

    // MARK: Results

    private func makeError(_ result: OpaquePointer) -> KTDBError {
        func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
        let state = field(diagSQLState)
        let message = field(diagMessagePrimary) ?? libpqErrorMessage(handle)
        if PQstatus(handle) != CONNECTION_OK {
            return KTDBError(code: .connectionClosed, message: message, sqlState: state)
        }
        return KTDBError(code: .server, message: message, sqlState: state, serverDetail: field(diagMessageDetail))
    }

    /// Copies a result out of libpq. `known` columns (those of the same prepared statement
    /// earlier) are reused when the result has the same column names and types.
    private func makeResult(_ result: OpaquePointer, columns known: PostgresColumns?) -> (result: PostgresResult, columns: PostgresColumns?) {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var rows: [PostgresRow] = []
        var shared: PostgresColumns?
        if columnCount > 0 {
            let columns: PostgresColumns
            if let known, known.typeOIDs.count == columnCount,
                known.typeOIDs.indices.allSatisfy({ column in
                    let name = PQfname(result, Int32(column))!
                    return known.typeOIDs[column] == PQftype(result, Int32(column))
                        && known.names[column].utf8.elementsEqual(UnsafeBufferPointer(start: UnsafeRawPointer(name).assumingMemoryBound(to: UInt8.self), count: strlen(name)))
                })
            {
                columns = known
            } else {
                var names: [String] = []
                var oids: [UInt32] = []
                names.reserveCapacity(columnCount)
                oids.reserveCapacity(columnCount)
                for column in 0..<Int32(columnCount) {
                    names.append(String(cString: PQfname(result, column)))
                    oids.append(PQftype(result, column))
                }
                columns = PostgresColumns(names: names, typeOIDs: oids)
            }
            rows.reserveCapacity(rowCount)
            for row in 0..<Int32(rowCount) {
                var values: [String?] = []
                values.reserveCapacity(columnCount)
                for column in 0..<Int32(columnCount) {
                    if PQgetisnull(result, row, column) == 1 {
                        values.append(nil)
                    } else {
                        let length = Int(PQgetlength(result, row, column))
                        let bytes = UnsafeRawPointer(PQgetvalue(result, row, column)!).assumingMemoryBound(to: UInt8.self)
                        values.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                    }
                }
                rows.append(PostgresRow(columns: columns, values: values))
            }
            shared = columns
        }
        let tuples = String(cString: PQcmdTuples(result))
        return (PostgresResult(rows: rows, affectedRows: Int(tuples) ?? rowCount), shared)
    }
}
