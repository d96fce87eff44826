public import KTDB
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// One graph the ``SyncService`` keeps in sync.
public struct SyncTarget: Sendable {
    /// The graph's slug.
    public var slug: String
    /// write-db session bound to the graph's schema (pool size at least 2: the cycle holds its lock on one connection).
    public var writeSession: DatabaseSession
    /// graph-db session bound to the graph's schema.
    public var graphSession: DatabaseSession
    /// The graph's database pair (its connection key): graphs of one pair share its parallelism,
    /// pairs are synced side by side.
    public var database: String

    /// Creates a target.
    public init(slug: String, writeSession: DatabaseSession, graphSession: DatabaseSession, database: String = "default") {
        self.slug = slug
        self.writeSession = writeSession
        self.graphSession = graphSession
        self.database = database
    }
}

/// A swift-service-lifecycle `Service` that syncs every active graph on an interval.
///
/// - Each tick asks `targets` for the graphs (for example `GraphSystem.syncTargets()` from
///   KTProvision) and starts a pass for every database pair that has no pass running: a pass
///   runs one ``SyncEngine/syncCycle()`` per graph of the pair, ``SyncSettings/parallelism`` at a
///   time. Pairs run side by side, so a slow or unreachable pair holds up only its own graphs.
/// - A graph's cycle is cut off after ``SyncSettings/taskTimeout`` (its transaction rolls back
///   and the next pass tries again).
/// - The engine's advisory lock keeps other processes off the same graph, so several workers run
///   side by side and share the graphs (a busy graph is skipped, not an error).
/// - It stops at graceful shutdown, after the cycles in progress.
/// - Metrics (swift-metrics, dimension `graph`): counter `kt_sync_rows_applied`, gauge
///   `kt_sync_lag_seconds` (the age of the oldest unsynced change after each cycle: 0 when the
///   cycle took every change, else read from write-db).
public struct SyncService: Service {
    private let targets: @Sendable () async throws -> [SyncTarget]
    private let settings: SyncSettings
    private let logger: Logger

    /// Creates the service.
    public init(settings: SyncSettings, logger: Logger, targets: @escaping @Sendable () async throws -> [SyncTarget]) {
        self.targets = targets
        self.settings = settings
        self.logger = logger
    }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        let running = RunningPairs()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                for (database, pair) in await listByPair() {
                    let started = running.pairs.withLock { $0.insert(database).inserted }
                    guard started else { continue }  // the previous pass of this pair is still running
                    group.addTask {
                        await self.pass(pair)
                        running.pairs.withLock { _ = $0.remove(database) }
                    }
                }
                do {
                    try await gracefulShutdownAwareSleep(settings.interval)
                } catch {
                    break
                }
            }
        }
    }

    /// One pass over every target, pairs side by side; returns when all are done. Errors are
    /// logged per graph and do not stop the others.
    public func runOnce() async {
        await withDiscardingTaskGroup { group in
            for (_, pair) in await listByPair() { group.addTask { await self.pass(pair) } }
        }
    }

    private func listByPair() async -> [String: [SyncTarget]] {
        do {
            return Dictionary(grouping: try await targets(), by: \.database)
        } catch {
            logger.warning("sync: listing graphs failed", metadata: ["kt.error": "\(error)"])
            return [:]
        }
    }

    /// One cycle for each graph of a pair, `parallelism` at a time. The watermark bound is
    /// measured once per write-db pool for the pass (it is per database, not per graph).
    private func pass(_ pair: [SyncTarget]) async {
        var bounds: [ObjectIdentifier: Result<SyncBound, any Error>] = [:]
        for target in pair where bounds[ObjectIdentifier(target.writeSession.pool)] == nil {
            do {
                bounds[ObjectIdentifier(target.writeSession.pool)] = .success(try await SyncBound.measure(on: target.writeSession, logger: logger))
            } catch {
                logger.warning("sync: cannot measure the watermark bound", metadata: ["kt.graph": "\(target.slug)", "kt.error": "\(error)"])
                bounds[ObjectIdentifier(target.writeSession.pool)] = .failure(error)
            }
        }
        await withTaskGroup(of: Void.self) { group in
            var next = pair.makeIterator()
            func start() {
                guard !Task.isShuttingDownGracefully, let target = next.next() else { return }
                guard case .success(let bound) = bounds[ObjectIdentifier(target.writeSession.pool)] else { return start() }
                group.addTask { await self.cycle(target, bound: bound) }
            }
            for _ in 0..<max(1, settings.parallelism) { start() }
            while await group.next() != nil { start() }
        }
    }

    private struct TimedOut: Error {}

    /// The pairs whose pass is running.
    private final class RunningPairs: Sendable {
        let pairs = Mutex<Set<String>>([])
    }

    /// One cycle of one graph, cut off after `taskTimeout`.
    private func cycle(_ target: SyncTarget, bound: SyncBound) async {
        let engine = SyncEngine(writeSession: target.writeSession, graphSession: target.graphSession, graphSlug: target.slug, settings: settings, logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let report = try await engine.syncCycle(bound: bound)
                    Counter(label: "kt_sync_rows_applied", dimensions: [("graph", target.slug)]).increment(by: report.totalApplied)
                    // The lag after the cycle, for the metrics: none left when no table reached its
                    // batch limit; else read (one statement).
                    let lag = Gauge(label: "kt_sync_lag_seconds", dimensions: [("graph", target.slug)])
                    if !report.reachedBatchLimit {
                        lag.record(0)
                    } else if let status = try? await engine.status() {
                        lag.record(status.lag())
                    }
                }
                group.addTask {
                    try await Task.sleep(for: settings.taskTimeout)
                    throw TimedOut()
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch let error as KTGraphError where error.code == .syncBusy {
            logger.debug("sync: graph busy in another process", metadata: ["kt.graph": "\(target.slug)"])
        } catch is TimedOut {
            logger.warning("sync: cycle cut off after the task timeout", metadata: ["kt.graph": "\(target.slug)", "kt.sync.timeout": "\(settings.taskTimeout)"])
        } catch {
            logger.warning("sync: cycle failed", metadata: ["kt.graph": "\(target.slug)", "kt.error": "\(error)"])
        }
    }
}

/// Sleeps for `duration`, returning early (by throwing) at graceful shutdown or cancellation.
private func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
    try await cancelWhenGracefulShutdown {
        try await Task.sleep(for: duration)
    }
}
