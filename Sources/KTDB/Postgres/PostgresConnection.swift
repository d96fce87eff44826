import CLibPQ
import Foundation
import Glibc
import KTCore
public import Logging
import Synchronization

/// One PostgreSQL connection over libpq.
///
/// The connection is nonblocking and driven by a ``PostgresEventLoop`` thread (`epoll`), so no
/// libpq call ever runs on Swift's cooperative pool; callers suspend until their statement
/// completes. Calls on one connection run one at a time, in order. Cancelling the awaiting
/// task closes the connection and, unless ``Configuration/sendsCancelRequests`` is off, sends
/// a cancel request to the server (`PQcancel`, on a thread of its own).
///
/// Most code uses a ``PostgresConnectionPool`` and a ``DatabaseSession``; a bare connection is
/// for one-off work such as provisioning and migrations.
public final class PostgresConnection: Sendable {
    private let loop: PostgresEventLoop
    private let io: LoopConnection
    private let stateBox: ConnectionStateBox
    private let cancelHandle: CancelHandle

    /// The configuration the connection was opened with.
    public let configuration: Configuration
    /// When the connection was opened.
    public let openedAt: ContinuousClock.Instant
    /// The server process id (`pg_backend_pid()`).
    public let backendPID: Int32

    private init(handle: OpaquePointer, configuration: Configuration, loop: PostgresEventLoop) {
        self.stateBox = ConnectionStateBox()
        self.io = LoopConnection(handle: handle, statementCapacity: configuration.preparedStatements.capacity, stateBox: stateBox)
        self.loop = loop
        self.cancelHandle = CancelHandle(PQgetCancel(handle))
        self.configuration = configuration
        self.openedAt = .now
        self.backendPID = PQbackendPID(handle)
    }

    /// Opens a connection.
    ///
    /// Cancellation: a task cancelled while the connection opens (a host that does not answer
    /// can take up to ``Configuration/connectTimeout``) returns at once; the connection, should
    /// it open later, is closed. Do not let the process exit while such a connection still
    /// opens (libpq uses OpenSSL, which the exit tears down under it); a pool's
    /// ``PostgresConnectionPool/shutdown()`` waits for the connections it opens.
    ///
    /// - Throws: ``KTDBError`` with code ``KTDBError/Code/connectionFailed``, whose message is
    ///   libpq's (it names host and user but never the password), or
    ///   ``KTDBError/Code/cancelled``.
    public static func connect(configuration: Configuration, logger: Logger) async throws -> PostgresConnection {
        try await connect(configuration: configuration, loop: PostgresEventLoop.next(), logger: logger)
    }

    /// `threadEnded` is called once libpq's connect is done, also when the task gave it up.
    static func connect(
        configuration: Configuration, loop: PostgresEventLoop, logger: Logger, threadEnded: @escaping @Sendable () -> Void = {}
    ) async throws -> PostgresConnection {
        let keywords = configuration.keywords
        let opening: Result<UnsafeSendableHandle, KTDBError>? = await BlockingCall.run(
            name: "kt-pg-connect", abandoned: { if case .success(let handle) = $0 { PQfinish(handle.pointer) } }, ended: threadEnded
        ) {
            // PQconnectdbParams reads both arrays up to a NULL entry.
            let handle = withCStrings(keywords.map(\.keyword) + [nil]) { keys in
                withCStrings(keywords.map(\.value) + [nil]) { values in PQconnectdbParams(keys, values, 0) }
            }
            guard let handle else { return .failure(KTDBError(code: .connectionFailed, message: "libpq could not allocate a connection")) }
            guard PQstatus(handle) == CONNECTION_OK else {
                let message = libpqErrorMessage(handle)
                PQfinish(handle)
                return .failure(KTDBError(code: .connectionFailed, message: message))
            }
            PQsetNoticeProcessor(handle, { _, _ in }, nil)
            guard PQsetnonblocking(handle, 1) == 0 else {
                let message = libpqErrorMessage(handle)
                PQfinish(handle)
                return .failure(KTDBError(code: .connectionFailed, message: message))
            }
            return .success(UnsafeSendableHandle(handle))
        }
        guard let opened = opening else {
            throw KTDBError(code: .cancelled, message: "the task was cancelled while a connection to \(configuration.url.host) was opening")
        }
        switch opened {
        case .failure(let error):
            logger.debug("Could not open a PostgreSQL connection", metadata: ["kt.db.host": "\(configuration.url.host)", "kt.error": "\(error.message)"])
            throw error
        case .success(let handle):
            let connection = PostgresConnection(handle: handle.pointer, configuration: configuration, loop: loop)
            try connection.loop.register(connection.io)
            logger.debug(
                "Opened a PostgreSQL connection",
                metadata: [
                    "kt.db.host": "\(configuration.url.host)", "kt.db.database": "\(configuration.url.database ?? "")",
                    "kt.db.application": "\(configuration.applicationName)", "kt.db.pid": "\(connection.backendPID)",
                ])
            return connection
        }
    }

    deinit {
        loop.submit(LoopJob(request: .close, completion: { _ in }), to: io)
    }

    /// Runs a request on the event loop.
    ///
    /// Cancellation: a task already cancelled sends nothing and fails with
    /// ``KTDBError/Code/cancelled``. A task cancelled while its statement is queued or running
    /// returns at once with that error (also when the network is gone, so that no answer would
    /// ever come), and the connection is abandoned: it never serves another statement, and its
    /// ``close()`` (the pool's) closes it at once, without waiting for the statement. One cancel
    /// request goes to the server unless ``Configuration/sendsCancelRequests`` is off: it
    /// travels on a connection of its own and may land late, which is one more reason the
    /// connection is never reused.
    private func run(_ request: LoopJob.Request) async throws(KTDBError) -> [PostgresResult] {
        try Self.rejectNUL(in: request)
        if stateBox.abandoned.load(ordering: .acquiring) {
            throw KTDBError(code: .connectionClosed, message: "the connection was abandoned after a cancelled statement")
        }
        let loop = self.loop, io = self.io, waiter = StatementWaiter()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard waiter.start(continuation) else { return }  // cancelled before anything was sent
                loop.submit(LoopJob(request: request, completion: { waiter.finish($0) }), to: io)
            }
        } onCancel: { [stateBox, cancelHandle, configuration] in
            if waiter.abandon() {
                stateBox.abandoned.store(true, ordering: .releasing)
                if configuration.sendsCancelRequests { cancelHandle.cancel() }
            }
        }
        return try result.get()
    }

    /// PostgreSQL text cannot hold U+0000, and libpq would cut a value at it: a value holding
    /// one is refused before anything is sent.
    private static func rejectNUL(in request: LoopJob.Request) throws(KTDBError) {
        let queries: [PostgresQuery] =
            switch request {
            case .query(let query): [query]
            case .scoped(let setup, let query): setup + [query]
            case .simple, .close, .copyStart, .copyRead, .copyWrite, .copyEnd: []
            }
        for query in queries {
            for (index, value) in query.binds.values.enumerated() where value?.utf8.contains(0) == true {
                throw KTDBError(code: .invalidArgument, message: "parameter $\(index + 1) contains a NUL character (U+0000), which PostgreSQL text cannot hold")
            }
        }
        if case .simple(let sql) = request, sql.utf8.contains(0) {
            throw KTDBError(code: .invalidArgument, message: "the statement contains a NUL character (U+0000)")
        }
    }

    /// Runs a step of a `COPY` (see `PostgresConnection+Copy.swift`).
    func runCopy(_ request: LoopJob.Request) async throws(KTDBError) -> [PostgresResult] {
        try await run(request)
    }

    /// Gives up on a `COPY TO STDOUT` whose reader failed: the server would go on streaming,
    /// so the connection is never used again (the pool closes it).
    func abandonCopy() {
        stateBox.abandoned.store(true, ordering: .releasing)
        if configuration.sendsCancelRequests { cancelHandle.cancel() }
    }

    // MARK: Queries

    /// Runs one statement with bound parameters and returns its rows.
    ///
    /// - Throws: ``KTDBError``: ``KTDBError/Code/server`` with the SQLSTATE for a rejected
    ///   statement, ``KTDBError/Code/connectionClosed`` when the connection broke.
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> PostgresResult {
        try await run(.query(query)).last ?? PostgresResult(rows: [], affectedRows: 0)
    }

    /// Runs `query` after the `setup` statements (for example a transaction-local
    /// `set_config('search_path', …, true)`) in one transaction, sent as one pipeline: one
    /// round trip. The server commits the transaction, or rolls it back when a statement fails
    /// (the error is thrown). The setup statements must not open a transaction block
    /// (`BEGIN`): the pipeline's implicit transaction is the one they share with `query`.
    @discardableResult
    public func query(_ query: PostgresQuery, after setup: [PostgresQuery], logger: Logger) async throws -> PostgresResult {
        try await run(.scoped(setup: setup, query: query)).last ?? PostgresResult(rows: [], affectedRows: 0)
    }

    /// Runs one or more statements without parameters through the simple query protocol
    /// (used for transaction control and migration scripts). Never put values in `sql`.
    public func execute(simple sql: String, logger: Logger) async throws {
        _ = try await run(.simple(sql))
    }

    /// Whether the connection is healthy: open as far as libpq knows and not closed by the
    /// server (the event loop reads an idle connection's socket as soon as the server writes
    /// to it, so a terminated backend is noticed without a round trip). With `roundTrip`, an
    /// empty statement also goes to the server and back.
    public func isAlive(roundTrip: Bool) async -> Bool {
        guard !stateBox.abandoned.load(ordering: .acquiring), stateBox.state.withLock({ $0.healthy }) else { return false }
        guard roundTrip else { return true }
        return (try? await run(.simple(""))) != nil
    }

    /// Whether the connection is open and outside any transaction (safe to hand to another
    /// user), as of the end of its last call.
    public var isIdleOutsideTransaction: Bool {
        !stateBox.abandoned.load(ordering: .acquiring) && stateBox.state.withLock { $0.healthy && $0.transaction == .idle }
    }

    /// Whether the current transaction has failed and only accepts `ROLLBACK`.
    var isInFailedTransaction: Bool {
        stateBox.state.withLock { $0.transaction == .failed }
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
        _ = try? await run(.close)
    }
}

/// A `PGconn *` handed from the connecting thread to the connection's owner.
struct UnsafeSendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// One statement's wait for its result: the result, or the task's cancellation, resumes the
/// waiting task exactly once; whichever comes second is dropped.
final class StatementWaiter: Sendable {
    private enum State {
        case idle(cancelled: Bool)
        case waiting(CheckedContinuation<Result<[PostgresResult], KTDBError>, Never>)
        case done
    }
    private let state = Mutex(State.idle(cancelled: false))

    static let cancelled = KTDBError(code: .cancelled, message: "the task was cancelled while its statement ran; the connection is closed")

    /// Registers the waiting task; `false` (and the task resumed with `cancelled`) when it was
    /// cancelled before, so that nothing is sent.
    func start(_ continuation: CheckedContinuation<Result<[PostgresResult], KTDBError>, Never>) -> Bool {
        let proceed = state.withLock { state -> Bool in
            guard case .idle(false) = state else { state = .done; return false }
            state = .waiting(continuation)
            return true
        }
        if !proceed {
            continuation.resume(returning: .failure(KTDBError(code: .cancelled, message: "the task was cancelled before the statement was sent")))
        }
        return proceed
    }

    /// The statement's result; dropped when the task already returned.
    func finish(_ result: Result<[PostgresResult], KTDBError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<[PostgresResult], KTDBError>, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .done
            return continuation
        }
        continuation?.resume(returning: result)
    }

    /// The task was cancelled: returns whether a statement was in flight (it is now abandoned
    /// and the task resumed with `cancelled`).
    func abandon() -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<Result<[PostgresResult], KTDBError>, Never>? in
            switch state {
            case .idle:
                state = .idle(cancelled: true)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .done:
                return nil
            }
        }
        continuation?.resume(returning: .failure(Self.cancelled))
        return continuation != nil
    }
}

/// libpq's cancel object; `PQcancel` is thread-safe and blocking, so it runs on its own thread.
final class CancelHandle: @unchecked Sendable {
    private let pointer: OpaquePointer?
    init(_ pointer: OpaquePointer?) { self.pointer = pointer }
    deinit { if let pointer { PQfreeCancel(pointer) } }

    func cancel() {
        guard pointer != nil else { return }
        BlockingCall.detach(name: "kt-pg-cancel") { [self] in
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(self.pointer, &buffer, Int32(buffer.count))
        }
    }
}
