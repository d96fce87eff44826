import Foundation
import KTConfig
import KTDB
import KTQdrant
import Logging
import Synchronization

/// The pools and Qdrant clients of one ``GraphSystem``: one pool per database endpoint and one
/// Qdrant client per Qdrant server, whatever the number of graphs.
///
/// A pool created after the system started running is announced on ``additions`` so that the
/// system's `run()` drives it too.
final class SharedResources: Sendable {
    private struct State {
        var pools: [DatabaseEndpoint.Identity: PostgresConnectionPool] = [:]
        var qdrants: [String: QdrantClient] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let settings: Settings
    private let applicationName: String
    private let logger: Logger
    /// Every pool as it is created (also those created before anyone listens).
    let additions: AsyncStream<PostgresConnectionPool>
    private let announce: AsyncStream<PostgresConnectionPool>.Continuation

    init(settings: Settings, applicationName: String, logger: Logger) {
        self.settings = settings
        self.applicationName = applicationName
        self.logger = logger
        (additions, announce) = AsyncStream.makeStream(of: PostgresConnectionPool.self)
    }

    /// The pool of `endpoint`, created on first use.
    ///
    /// - Throws: ``KTProvisionError/Code/shutDown`` after ``shutdown()``.
    func pool(for endpoint: DatabaseEndpoint) throws(KTProvisionError) -> PostgresConnectionPool {
        let (pool, created) = try state.withLock { state throws(KTProvisionError) -> (PostgresConnectionPool, Bool) in
            guard !state.closed else { throw KTProvisionError(code: .shutDown, message: "the graph system is shut down") }
            if let pool = state.pools[endpoint.identity] { return (pool, false) }
            let pool = PostgresConnectionPool(
                configuration: .init(connection: endpoint.pooledConnection(application: applicationName), pool: endpoint.pool, label: endpoint.description),
                backgroundLogger: logger)
            state.pools[endpoint.identity] = pool
            return (pool, true)
        }
        if created {
            logger.debug(
                "Opened a database pool",
                metadata: [
                    "kt.db.pool": "\(endpoint)", "kt.db.pooler": "\(endpoint.throughPooler)",
                    "kt.db.pool_max": "\(endpoint.pool.maximumConnections)",
                ])
            announce.yield(pool)
        }
        return pool
    }

    /// Every pool created so far.
    var pools: [PostgresConnectionPool] { state.withLock { Array($0.pools.values) } }

    /// The Qdrant client of the server at `url`: the process-wide shared client for the global
    /// Qdrant, else one client per URL kept until ``shutdown()``.
    func qdrant(url: String) throws -> QdrantClient {
        if QdrantClient.sameServer(url, settings.qdrant.url) {
            return try QdrantClient.shared(configuration: settings.qdrant, logger: logger)
        }
        let key = url.hasSuffix("/") ? String(url.dropLast()) : url
        if let client = state.withLock({ $0.qdrants[key] }) { return client }
        let client = try makeQdrantClient(url: url, configuration: settings.qdrant, logger: logger)
        let (kept, closed) = state.withLock { state -> (QdrantClient, Bool) in
            if let existing = state.qdrants[key] { return (existing, false) }
            if state.closed { return (client, true) }
            state.qdrants[key] = client
            return (client, false)
        }
        if kept !== client || closed { client.close() }
        if closed { throw KTProvisionError(code: .shutDown, message: "the graph system is shut down") }
        return kept
    }

    /// Shuts every pool down and closes the dedicated Qdrant clients; later requests fail.
    func shutdown() async {
        let (pools, qdrants) = state.withLock { state -> ([PostgresConnectionPool], [QdrantClient]) in
            state.closed = true
            defer { state.qdrants = [:] }
            return (Array(state.pools.values), Array(state.qdrants.values))
        }
        announce.finish()
        for pool in pools { await pool.shutdown() }
        for client in qdrants { client.close() }
    }
}
