public import KTConfig
public import KTDB
public import Logging
public import ServiceLifecycle

/// One graph the ``SyncService`` keeps in sync.
public struct SyncTarget: Sendable {
    /// The graph's slug.
    public var slug: String
    /// write-db session bound to the graph's schema (pool size at least 2: the cycle holds its lock on one connection).
    public var writeSession: DatabaseSession
    /// graph-db session bound to the graph's schema.
    public var graphSession: DatabaseSession

    /// Creates a target.
    public init(slug: String, writeSession: DatabaseSession, graphSession: DatabaseSession) {
        self.slug = slug
        self.writeSession = writeSession
        self.graphSession = graphSession
    }
}

/// A swift-service-lifecycle `Service` that syncs every active graph on an interval.
///
/// Each tick asks `targets` for the graphs (for example `GraphSessionResolver.syncTargets()` from
/// KTProvision) and runs one ``SyncEngine/syncCycle()`` per graph, one graph at a time in this
/// process; the engine's advisory lock keeps other processes off the same graph, so several
/// workers can run side by side (a busy graph is skipped, not an error). It stops at graceful
/// shutdown, after the cycle in progress.
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
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await runOnce()
            do {
                try await gracefulShutdownAwareSleep(settings.interval)
            } catch {
                return
            }
        }
    }

    /// One pass over every target; errors are logged per graph and do not stop the others.
    public func runOnce() async {
        let list: [SyncTarget]
        do {
            list = try await targets()
        } catch {
            logger.warning("sync: listing graphs failed", metadata: ["kt.error": "\(error)"])
            return
        }
        for target in list {
            if Task.isShuttingDownGracefully { return }
            let engine = SyncEngine(writeSession: target.writeSession, graphSession: target.graphSession, graphSlug: target.slug, settings: settings, logger: logger)
            do {
                try await engine.syncCycle()
            } catch let error as KTGraphError where error.code == .syncBusy {
                logger.debug("sync: graph busy in another process", metadata: ["kt.graph": "\(target.slug)"])
            } catch {
                logger.warning("sync: cycle failed", metadata: ["kt.graph": "\(target.slug)", "kt.error": "\(error)"])
            }
        }
    }
}

/// Sleeps for `duration`, returning early (by throwing) at graceful shutdown or cancellation.
private func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
    try await cancelWhenGracefulShutdown {
        try await Task.sleep(for: duration)
    }
}
