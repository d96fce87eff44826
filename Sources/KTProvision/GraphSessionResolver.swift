public import Foundation
import KTConfig
public import KTDB
public import KTQdrant
import Logging

/// Everything needed to work on one graph: sessions on its graph-db and write-db bound to its
/// schema, and its Qdrant client and collection names.
///
/// The sessions run on the pools of the graph's databases, which every graph living in the same
/// database shares; routing to the graph's schema happens per transaction or per statement.
public struct GraphSessions: Sendable {
    /// The graph row as resolved.
    public let graph: Graph
    /// Where the graph lives.
    public let targets: GraphTargets
    /// graph-db session bound to the graph's schema.
    public let graphSession: DatabaseSession
    /// write-db session bound to the graph's schema.
    public let writeSession: DatabaseSession
    /// The Qdrant client of the graph's database pair.
    public let qdrant: QdrantClient
    /// The graph's collection names (prefix `<slug>__`, none for the default graph).
    public let collections: QdrantCollections
}

/// Maps a graph id or slug to cached ``GraphSessions`` on the right databases; part of a
/// ``GraphSystem``, which owns the pools.
///
/// - Every graph, the default one included, gets sessions on the one pool per database that the
///   system keeps: the system pair's pools for graphs without a database connection, the pools of
///   `settings.graphDatabases[key]` for the others; and that pair's Qdrant client.
/// - First resolution of a graph is single-flight: concurrent callers share one build, which runs
///   in the first caller's task (structured: cancelling that caller stops it, and the others
///   then build again).
/// - ``invalidate(graphID:)`` drops a cached entry (pools stay: other graphs use them). The
///   system calls it for changes made by any process on the same control plane.
public actor GraphSessionResolver {
    private let settings: Settings
    private let controlPlane: DatabaseSession
    private let resources: SharedResources
    private let logger: Logger
    private var cache: [UUID: GraphSessions] = [:]
    private var slugToID: [String: UUID] = [:]
    /// The callers waiting for a build that another caller (the leader) runs; a key is present
    /// while its build runs.
    private var waiters: [UUID: [CheckedContinuation<GraphSessions, any Error>]] = [:]
    /// Bumped by every invalidation, so a build that started before one is not cached.
    private var generation = 0

    init(settings: Settings, controlPlane: DatabaseSession, resources: SharedResources, logger: Logger) {
        self.settings = settings
        self.controlPlane = controlPlane
        self.resources = resources
        self.logger = logger
    }

    /// The sessions of the graph with `id`.
    ///
    /// - Throws: ``KTProvisionError/Code/notFound`` for an unknown or deleted graph,
    ///   ``KTProvisionError/Code/unknownConnection`` naming the `EXTRA_DB_<KEY>_*` variables
    ///   when its connection key is not configured in this process.
    public func resolve(graphID id: UUID) async throws -> GraphSessions {
        while true {
            if let cached = cache[id] { return cached }
            guard waiters[id] != nil else { break }
            do {
                return try await withCheckedThrowingContinuation { waiters[id, default: []].append($0) }
            } catch is LeaderCancelled {
                continue  // the leader's task was cancelled: build again, perhaps as the leader
            }
        }
        // The leader builds in its own task, so a cancelled caller stops its own work; the others
        // waiting for it then try again rather than share its cancellation.
        waiters[id] = []
        let started = generation
        let result: Result<GraphSessions, any Error>
        do { result = .success(try await build(id: id)) } catch { result = .failure(error) }
        let waiting = waiters.removeValue(forKey: id) ?? []
        switch result {
        case .success(let sessions):
            if generation == started {
                cache[id] = sessions
                slugToID[sessions.graph.slug] = id
            }
            for waiter in waiting { waiter.resume(returning: sessions) }
        case .failure(let error):
            let cancelled = Task.isCancelled
            for waiter in waiting { waiter.resume(throwing: cancelled ? LeaderCancelled() : error) }
        }
        return try result.get()
    }

    /// The number of callers waiting for a build of `id` that another caller runs, or `nil` when
    /// none runs (for tests).
    func waiting(for id: UUID) -> Int? { waiters[id]?.count }

    /// The sessions of the graph with `slug`.
    public func resolve(slug: String) async throws -> GraphSessions {
        if let id = slugToID[slug], let cached = cache[id] { return cached }
        guard let graph = try await GraphRepository(controlPlane, logger: logger).graph(slug: slug), graph.status != .deleted else {
            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
        }
        return try await resolve(graphID: graph.id)
    }

    /// The graphs whose status is `active`.
    public func listActiveGraphs() async throws -> [Graph] {
        try await GraphRepository(controlPlane, logger: logger).listActive()
    }

    /// Drops a graph's cached sessions; the next resolution reads its row again.
    public func invalidate(graphID id: UUID) {
        generation += 1
        guard let sessions = cache.removeValue(forKey: id) else { return }
        slugToID[sessions.graph.slug] = nil
        logger.debug("Dropped a graph's cached sessions", metadata: ["kt.graph": "\(sessions.graph.slug)"])
    }

    /// Drops every cached entry.
    public func invalidateAll() {
        generation += 1
        cache = [:]
        slugToID = [:]
    }

    /// The graphs whose sessions are cached, with the row each was resolved from.
    var cachedGraphs: [Graph] { cache.values.map(\.graph) }

    /// Tells the callers waiting for a leader that it was cancelled.
    private struct LeaderCancelled: Error {}

    private func build(id: UUID) async throws -> GraphSessions {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard let graph = try await repository.graph(id: id), graph.status != .deleted else {
            throw KTProvisionError(code: .notFound, message: "no graph with id \(id)")
        }
        let targets = try await GraphTargets.resolve(for: graph, repository: repository, settings: settings)
        let graphPool = try resources.pool(for: targets.graphEndpoint)
        let writePool = try resources.pool(for: targets.writeEndpoint)
        let qdrant = try resources.qdrant(url: targets.qdrantURL)
        logger.debug("Resolved a graph's sessions", metadata: ["kt.graph": "\(graph.slug)", "kt.schema": "\(targets.schema)", "kt.db.connection": "\(targets.connectionKey)"])
        return GraphSessions(
            graph: graph, targets: targets,
            graphSession: DatabaseSession(pool: graphPool, schema: targets.schema), writeSession: DatabaseSession(pool: writePool, schema: targets.schema),
            qdrant: qdrant, collections: QdrantCollections(graphSlug: graph.slug))
    }
}
