import Foundation
import KTConfig
import KTDB
import KTGraph
import KTQdrant
import Logging

/// A step of a move, reported as it starts.
public struct MoveProgress: Sendable {
    /// In order: `prepare-target`, `copy-graph-db`, `copy-write-db`, `copy-points` (when the
    /// target pair has a Qdrant of its own), `pause-writes`, `catch-up`, `verify`, `switch`,
    /// `drop-source`.
    public var phase: String
    /// What the step did (rows, points), when it is done.
    public var detail: String
}

extension GraphProvisioner {
    /// The SQLSTATE of a write refused while a move pauses the graph's writes (retry shortly).
    public static let writesPausedSQLState = "KTM01"

    /// The phases of a move, in order (`copy-points` only when the target pair has a Qdrant of
    /// its own).
    public static let movePhases = ["prepare-target", "copy-graph-db", "copy-write-db", "copy-points", "pause-writes", "catch-up", "verify", "switch", "drop-source"]

    /// Moves graph `slug` to the database pair `key` (`default`: the system pair).
    ///
    /// 1. The graph's status becomes `moving`; readers and writers keep using the source.
    /// 2. Its schemas are created and migrated in the target pair. A row trigger on every table
    ///    of the source's two schemas starts recording the keys of the rows that change.
    /// 3. graph-db and write-db are copied with COPY, each in one snapshot, and each copy is
    ///    checked whole (row count and checksum per table); the points are copied when the
    ///    target pair has a Qdrant of its own. Nothing is paused yet.
    /// 4. Writes pause: a statement trigger on the source's tables refuses writes with SQLSTATE
    ///    ``writesPausedSQLState`` (retryable); graph-db stays writable for the sync alone. The
    ///    graph's sync lock is taken, and only the rows recorded since the snapshots are copied
    ///    again (deleted where the source lacks them), with the sync's state among them.
    /// 5. The copied rows' count and checksum, every changed table's row count and every
    ///    collection's point count must be equal on both sides; then the graph's pair changes in
    ///    one statement (other processes drop their cached sessions through the change log)
    ///    and, after `grace`, the source's schemas and collections are dropped.
    ///
    /// Any failure before the switch removes what was made on the target, lifts the pause and
    /// the recording, and leaves the graph active on its source, with the reason in
    /// `provisioningError`. A graph left `moving` by a process that died is rolled back and
    /// moved again by `resume`.
    ///
    /// - Throws: ``KTProvisionError``: `notFound`; `unknownConnection`; `invalidState` for the
    ///   pair the graph is on or the default graph; `conflict` while the graph is not active
    ///   (or moving, without `resume`); `stepFailed` with the phase that failed.
    @discardableResult
    public func moveGraph(
        slug: String, toDatabase key: String, resume: Bool = false, grace: Duration = .seconds(2),
        progress: @escaping @Sendable (MoveProgress) -> Void = { _ in }
    ) async throws -> Graph {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard var graph = try await repository.graph(slug: slug), graph.status != .deleted else {
            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
        }
        guard !graph.isDefault else { throw KTProvisionError(code: .invalidState, message: "the default graph lives in the system pair and cannot move") }
        let targetKey = GraphDatabases.isSystemKey(key) ? GraphDatabases.defaultKey : key
        var targetRecord: DatabaseConnectionRecord?
        if targetKey != GraphDatabases.defaultKey {
            guard let row = try await repository.databaseConnection(configKey: targetKey) else {
                throw KTProvisionError(code: .unknownConnection, message: "no database connection with key '\(targetKey)'")
            }
            targetRecord = row
        }
        if graph.status == .moving {
            guard resume else { throw KTProvisionError(code: .conflict, message: "graph '\(slug)' is already moving; resume it or wait") }
            try await rollBackMove(graph, reason: "rolled back by a resumed move")
            graph = try await repository.graph(slug: slug) ?? graph
        }
        // A source an earlier move switched away from but did not drop (its process stopped).
        if let left = graph.moveSource {
            try await dropMoveSource(of: graph, pair: left)
            graph = try await repository.graph(slug: slug) ?? graph
        }
        guard graph.databaseConnectionID != targetRecord?.id else {
            // A resumed move that had switched is complete once its source is gone.
            if resume { return graph }
            throw KTProvisionError(code: .invalidState, message: "graph '\(slug)' is already on '\(targetKey)'")
        }
        let source = try await targets(for: graph)
        let schema = try GraphSlug(graph.slug).schemaName
        let target: GraphTargets
        do {
            target = try GraphTargets.resolve(connectionKey: targetKey, schema: schema, settings: settings)
        } catch {
            throw KTProvisionError(code: .unknownConnection, message: Self.describe(error))
        }
        // Two keys may name the same databases: a move there would drop the graph itself.
        guard !Self.sharesDatabase(source, target) else {
            throw KTProvisionError(code: .invalidState, message: "'\(targetKey)' names a database graph '\(slug)' is already in")
        }
        guard let moving = try await repository.beginMove(graphID: graph.id, target: targetKey) else {
            throw KTProvisionError(code: .conflict, message: "graph '\(slug)' is \(graph.status.rawValue); only an active graph can move")
        }
        var phase = "prepare-target"
        do {
            let mover = GraphMover(provisioner: self, graph: moving, source: source, target: target, repository: repository, progress: progress)
            let switched = try await mover.run({ phase = $0 }) {
                phase = "switch"
                progress(MoveProgress(phase: phase, detail: ""))
                guard let switched = try await repository.finishMove(graphID: graph.id, connectionID: targetRecord?.id, source: source.connectionKey) else {
                    throw KTProvisionError(code: .conflict, message: "the graph stopped moving during the switch")
                }
                return switched
            }
            // The source stays until other processes have dropped their sessions to it.
            phase = "drop-source"
            progress(MoveProgress(phase: phase, detail: ""))
            try? await Task.sleep(for: grace)
            do {
                try await mover.dropSource()
                try await repository.clearMoveSource(graphID: graph.id)
            } catch {
                // The graph is served from the target already; the next move (or a resumed one) drops the source.
                logger.warning("a moved graph's source was not dropped", metadata: ["kt.graph": "\(slug)", "kt.error": "\(Self.describe(error))"])
                return switched
            }
            logger.debug("graph moved", metadata: ["kt.graph": "\(slug)", "kt.move.target": "\(targetKey)"])
            return try await repository.graph(slug: slug) ?? switched
        } catch {
            let reason = "\(phase): \(Self.describe(error))"
            if phase != "drop-source" { try? await rollBackMove(moving, reason: reason) }
            throw KTProvisionError(code: .stepFailed, message: "the move of '\(slug)' stopped at \(reason); the graph stays on its source")
        }
    }

    /// Drops what a switched move left in pair `key` (schemas, and collections when that pair
    /// has a Qdrant of its own), then forgets it. Never touches a database the graph is in.
    func dropMoveSource(of graph: Graph, pair key: String) async throws {
        let repository = GraphRepository(controlPlane, logger: logger)
        let current = try await targets(for: graph)
        let left = try GraphTargets.resolve(connectionKey: key, schema: current.schema, settings: settings)
        if !Self.sharesDatabase(left, current) {
            let mover = GraphMover(provisioner: self, graph: graph, source: left, target: current, repository: repository, progress: { _ in })
            try await mover.dropSource()
        }
        try await repository.clearMoveSource(graphID: graph.id)
    }

    /// Whether two pairs have a database in common (same host, port and database name).
    static func sharesDatabase(_ a: GraphTargets, _ b: GraphTargets) -> Bool {
        func same(_ x: DatabaseURL, _ y: DatabaseURL) -> Bool { x.host == y.host && (x.port ?? 5432) == (y.port ?? 5432) && x.database == y.database }
        return [a.graphDatabaseURL, a.writeDatabaseURL].contains { x in [b.graphDatabaseURL, b.writeDatabaseURL].contains { same(x, $0) } }
    }

    /// Undoes a move that did not switch: lifts the write pause and the change recording on the
    /// source, drops the target's schemas and collections, and makes the graph active again.
    func rollBackMove(_ graph: Graph, reason: String) async throws {
        let repository = GraphRepository(controlPlane, logger: logger)
        let source = try await targets(for: graph)
        let schema = try GraphSlug(graph.slug).schemaName
        if let key = graph.moveTarget, let target = try? GraphTargets.resolve(connectionKey: key, schema: schema, settings: settings) {
            let mover = GraphMover(provisioner: self, graph: graph, source: source, target: target, repository: repository, progress: { _ in })
            // The pause must go; a target that cannot be reached keeps its leftovers until the
            // next move to it (which drops them first).
            try await mover.removeFences()
            do {
                try await mover.dropTarget()
            } catch {
                logger.debug("a failed move's target was not cleaned", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(Self.describe(error))"])
            }
        }
        try await repository.abortMove(graphID: graph.id, reason: reason)
    }
}
