import Foundation
import KTCore
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// A pool of PostgreSQL connections with SQLAlchemy `QueuePool` semantics: up to `size` idle
/// connections are kept, up to `maxOverflow` more are opened under load and closed when
/// returned, a checkout waits at most `timeout`, and connections older than `recycle` are
/// replaced.
///
/// The pool is a `Service`: ``run()`` does its background maintenance (closing idle connections
/// past their recycle age, publishing metrics) until graceful shutdown, then shuts the pool down.
/// Without a service group, call ``shutdown()`` when done.
///
/// Metrics (swift-metrics, dimension `pool`): gauges `kt_db_pool_connections_in_use`,
/// `kt_db_pool_connections_idle`, `kt_db_pool_waiters`; counter `kt_db_pool_checkout_timeouts`;
/// timer `kt_db_pool_checkout_wait` (how long each checkout took, opening a connection included).
public final class PostgresConnectionPool: Sendable, Service {
    struct IdleConnection {
        var connection: PostgresConnection
        var idleSince: ContinuousClock.Instant
    }

    typealias Waiters = WaiterQueue<CheckedContinuation<PostgresConnection?, any Error>>
    typealias Waiter = Waiters.Waiter

    struct State {
        var idle: [IdleConnection] = []
        var inUse = 0
        var opening = 0
        var waiters = Waiters()
        var closed = false
        var total: Int { idle.count + inUse + opening }
    }

    /// The pool's configuration.
    public let configuration: Configuration
    private let loop: PostgresEventLoop

    /// The executor of the thread that drives this pool's connections.
    ///
    /// A task that runs many statements can prefer it —
    /// `withTaskExecutorPreference(pool.executor) { ... }` — so that each completed statement
    /// resumes it on the same thread instead of waking a thread of the cooperative pool. Code
    /// running there must not block; the default (no preference) is always safe.
    public var executor: any TaskExecutor { loop }
    private let logger: Logger
    private let state = Mutex(State())
    private let inUseGauge: Gauge
    private let idleGauge: Gauge
    private let waitersGauge: Gauge
    private let timeoutCounter: Counter
    /// libpq connects of this pool still running (also those given up by their tasks).
    private let connectThreads = RunningCount()
    private let waitTimer: Timer

    /// Creates a pool. No connection is opened until the first checkout.
    ///
    /// - Parameter backgroundLogger: used by the maintenance loop; per-call loggers go to ``withConnection(logger:_:)``.
    public init(configuration: Configuration, backgroundLogger: Logger) {
        self.configuration = configuration
        self.logger = backgroundLogger
        self.loop = PostgresEventLoop.next()
        let dimensions = [("pool", configuration.label)]
        self.inUseGauge = Gauge(label: "kt_db_pool_connections_in_use", dimensions: dimensions)
        self.idleGauge = Gauge(label: "kt_db_pool_connections_idle", dimensions: dimensions)
        self.waitersGauge = Gauge(label: "kt_db_pool_waiters", dimensions: dimensions)
        self.timeoutCounter = Counter(label: "kt_db_pool_checkout_timeouts", dimensions: dimensions)
        self.waitTimer = Timer(label: "kt_db_pool_checkout_wait", dimensions: dimensions)
    }

    /// Creates a pool, runs `body` with it, and shuts it down, also when `body` throws.
    ///
    /// For a pool that lives as long as the process, run it in a `ServiceGroup` instead.
    public static func withPool<T: Sendable>(
        configuration: Configuration, backgroundLogger: Logger, _ body: (PostgresConnectionPool) async throws -> T
    ) async throws -> T {
        let pool = PostgresConnectionPool(configuration: configuration, backgroundLogger: backgroundLogger)
        do {
            let value = try await body(pool)
            await pool.shutdown()
            return value
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    /// The current number of in-use, idle, opening connections and waiting tasks.
    public var statistics: Statistics {
        state.withLock { Statistics(inUse: $0.inUse, idle: $0.idle.count, opening: $0.opening, waiting: $0.waiters.count) }
    }

    /// Checks out a connection, runs `body` with it, and returns it to the pool.
    ///
    /// A connection returned inside a transaction or broken is closed instead of reused.
    ///
    /// - Throws: ``KTDBError/Code/poolTimeout`` when no connection frees up within the
    ///   checkout timeout, ``KTDBError/Code/poolClosed`` after ``shutdown()``, or what `body` throws.
    @discardableResult
    public func withConnection<T: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await checkout(logger: logger)
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    // MARK: Checkout

    private enum CheckoutStep {
        case reuse(IdleConnection)
        case open
        case wait
    }

    func checkout(logger: Logger) async throws -> PostgresConnection {
        let start = ContinuousClock.now
        let connection = try await acquire(logger: logger)
        waitTimer.record(duration: ContinuousClock.now - start)
        return connection
    }

    private func acquire(logger: Logger) async throws -> PostgresConnection {
        let deadline = ContinuousClock.now + configuration.pool.timeout
        while true {
            if Task.isCancelled {
                throw KTDBError(code: .cancelled, message: "the task was cancelled before it got a connection of pool '\(configuration.label)'")
            }
            let step: CheckoutStep = try state.withLock { state throws(KTDBError) in
                if state.closed { throw closedError }
                if let idle = state.idle.popLast() {
                    state.inUse += 1
                    return .reuse(idle)
                }
                if state.total < configuration.pool.maximumConnections {
                    state.opening += 1
                    connectThreads.begin()  // under the lock: a shutdown now waits for this connect
                    return .open
                }
                return .wait
            }
            switch step {
            case .reuse(let idle):
                if let usable = await vet(idle, logger: logger) {
                    publishMetrics()
                    return usable
                }
                // Discarded: its slot becomes free; open a replacement in that slot.
                try state.withLock { state throws(KTDBError) in
                    state.inUse -= 1
                    if state.closed { throw closedError }
                    state.opening += 1
                    connectThreads.begin()
                }
                return try await open(logger: logger)
            case .open:
                return try await open(logger: logger)
            case .wait:
                if let connection = try await wait(until: deadline, logger: logger) {
                    publishMetrics()
                    return connection
                }
            // Woken with a free slot but no connection: try again.
            }
        }
    }

    /// Checks a connection taken from the idle list; `nil` means it was closed and must be replaced.
    private func vet(_ idle: IdleConnection, logger: Logger) async -> PostgresConnection? {
        let connection = idle.connection
        let now = ContinuousClock.now
        if now - connection.openedAt >= configuration.pool.recycle {
            logger.debug("Recycling an old PostgreSQL connection", metadata: ["kt.db.pool": "\(configuration.label)"])
            await connection.close()
            return nil
        }
        if configuration.prePing {
            let roundTrip = now - idle.idleSince >= configuration.prePingAfterIdle
            if !(await connection.isAlive(roundTrip: roundTrip)) {
                logger.debug("Pre-ping found a dead PostgreSQL connection", metadata: ["kt.db.pool": "\(configuration.label)"])
                await connection.close()
                return nil
            }
        }
        return connection
    }

    /// Opens a connection in a slot already counted in `opening` and `connectThreads`.
    private func open(logger: Logger) async throws -> PostgresConnection {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: configuration.connection, loop: loop, logger: logger, threadEnded: { [connectThreads] in connectThreads.end() })
            state.withLock {
                $0.opening -= 1; $0.inUse += 1
            }
            publishMetrics()
            return connection
        } catch {
            let waiter = state.withLock { state -> Waiter? in
                state.opening -= 1
                return state.waiters.popFirst()
            }
            // A freed slot lets a waiter try to open its own connection.
            waiter?.continuation.resume(returning: nil)
            throw error
        }
    }

    /// Waits for a connection (or a free slot: `nil`) until `deadline`. The deadline, the
    /// task's cancellation and the pool's shutdown each end the wait with their own error,
    /// whatever order they come in relative to the waiter's registration (``WaiterQueue``).
    private func wait(until deadline: ContinuousClock.Instant, logger: Logger) async throws -> PostgresConnection? {
        let id = state.withLock { $0.waiters.makeID() }
        publishMetrics()
        let label = configuration.label
        let expiredError = KTDBError(
            code: .poolTimeout,
            message: "no connection of pool '\(label)' became free within \(configuration.pool.timeout) (size \(configuration.pool.size), max overflow \(configuration.pool.maxOverflow))")
        let cancelledError = KTDBError(code: .cancelled, message: "the task was cancelled while it waited for a connection of pool '\(label)'")
        func error(for ending: Waiters.Ending) -> KTDBError {
            if ending == .expired { timeoutCounter.increment() }
            return ending == .expired ? expiredError : cancelledError
        }
        return try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Only a deadline that passes ends the wait here; a cancelled sleep means the
                    // wait ended otherwise (the task's cancellation has its own handler).
                    do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
                    let expired = self.state.withLock { $0.waiters.end(id, .expired) }
                    expired?.continuation.resume(throwing: error(for: .expired))
                }
                defer { group.cancelAll() }
                return try await withCheckedThrowingContinuation { continuation in
                    let outcome = self.state.withLock { state -> Result<Void, KTDBError> in
                        if state.closed {
                            state.waiters.forget(id)
                            return .failure(self.closedError)
                        }
                        if let ending = state.waiters.register(id, continuation: continuation) { return .failure(error(for: ending)) }
                        return .success(())
                    }
                    if case .failure(let failure) = outcome { continuation.resume(throwing: failure) }
                }
            }
        } onCancel: {
            let cancelled = self.state.withLock { $0.waiters.end(id, .cancelled) }
            cancelled?.continuation.resume(throwing: cancelledError)
        }
    }

    // MARK: Release

    func release(_ connection: PostgresConnection) async {
        let reusable = connection.isIdleOutsideTransaction
        enum Outcome { case handedOver(Waiter), pooled, close(wakeWaiter: Waiter?) }
        let outcome = state.withLock { state -> Outcome in
            state.inUse -= 1
            if reusable, !state.closed {
                if !state.waiters.isEmpty {
                    state.inUse += 1
                    return .handedOver(state.waiters.popFirst()!)
                }
                if state.idle.count < configuration.pool.size {
                    state.idle.append(IdleConnection(connection: connection, idleSince: .now))
                    return .pooled
                }
            }
            // Closed: its slot is free, so a waiter may open a new connection.
            return .close(wakeWaiter: state.waiters.popFirst())
        }
        switch outcome {
        case .handedOver(let waiter):
            waiter.continuation.resume(returning: connection)
        case .pooled:
            break
        case .close(let waiter):
            await connection.close()
            waiter?.continuation.resume(returning: nil)
        }
        publishMetrics()
    }

    // MARK: Lifecycle

    /// Runs background maintenance until graceful shutdown or cancellation, then shuts the pool down.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.configuration.maintenanceInterval)
                await self.closeExpiredIdleConnections()
                self.publishMetrics()
            }
        }
        await shutdown()
    }

    /// Closes idle connections older than the recycle age.
    func closeExpiredIdleConnections() async {
        let now = ContinuousClock.now
        let expired = state.withLock { state -> [PostgresConnection] in
            let (old, keep) = state.idle.reduce(into: ([IdleConnection](), [IdleConnection]())) { acc, idle in
                if now - idle.connection.openedAt >= configuration.pool.recycle { acc.0.append(idle) } else { acc.1.append(idle) }
            }
            state.idle = keep
            return old.map(\.connection)
        }
        for connection in expired { await connection.close() }
    }

    /// What every checkout gets after ``shutdown()``.
    private var closedError: KTDBError { KTDBError(code: .poolClosed, message: "the pool '\(configuration.label)' is shut down") }

    /// Closes idle connections, fails waiting checkouts with ``KTDBError/Code/poolClosed``, and
    /// makes every later checkout fail; connections in use are closed when they are returned.
    /// Returns once no connection of the pool is still opening, also one given up by a
    /// cancelled task (its thread closes it), so that nothing of the pool outlives it.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { state -> ([IdleConnection], [Waiter]) in
            state.closed = true
            defer { state.idle = [] }
            return (state.idle, state.waiters.removeAll())
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: closedError)
        }
        for entry in idle { await entry.connection.close() }
        publishMetrics()
        await connectThreads.waitForNone()
    }

    private func publishMetrics() {
        let snapshot = statistics
        inUseGauge.record(snapshot.inUse)
        idleGauge.record(snapshot.idle)
        waitersGauge.record(snapshot.waiting)
    }
}
