import Foundation
import KTConfig
public import KTDB
import KTGraph
import KTQdrant
import Logging

/// A step of a move, reported as it starts.
public struct MoveProgress: Sendable {
    /// `prepare-target`, `copy-graph-db`, `copy-points`, `pause-writes`, `copy-write-db`,
    /// `catch-up`, `verify`, `switch`, `drop-source`.
    public var phase: String
    /// What the step did (rows, points), when it is done.
    public var detail: String
}

extension GraphProvisioner {
    /// The SQLSTATE of a write refused while a move pauses the graph's writes (retry shortly).
    public static let writesPausedSQLState = "KTM01"

    /// Moves graph `slug` to the database pair `key` (`default`: the system pair).
    ///
    /// 1. The graph's status becomes `moving`; readers and writers keep using the source.
    /// 2. Its schemas are created and migrated in the target pair; graph-db is copied with COPY
    ///    (one snapshot, taken after the sync's watermarks were read, so the target's sync
    ///    re-applies whatever the snapshot may lack); the points are copied when the target
    ///    pair has a Qdrant of its own.
    /// 3. Writes pause: a statement trigger on every write-db table of the source refuses
    ///    writes with SQLSTATE `KTM01` ("graph is moving", retryable). write-db is copied with
    ///    COPY, both sides' syncs run until idle, points written meanwhile are copied.
    /// 4. Every table's row count and checksum, and every collection's point count, must be
    ///    equal on both sides; then the graph's pair changes in one statement (other processes
    ///    drop their cached sessions through the change log) and, after `grace`, the source's
    ///    schemas and collections are dropped.
    ///
    /// Any failure before the switch removes what was made on the target, lifts the pause and
    /// leaves the graph active on its source, with the reason in `provisioningError`. A graph
    /// left `moving` by a process that died is rolled back and moved again by `resume`.
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
        guard graph.databaseConnectionID != targetRecord?.id else {
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
        guard let moving = try await repository.beginMove(graphID: graph.id, target: targetKey) else {
            throw KTProvisionError(code: .conflict, message: "graph '\(slug)' is \(graph.status.rawValue); only an active graph can move")
        }
        var phase = "prepare-target"
        do {
            let mover = GraphMover(provisioner: self, graph: moving, source: source, target: target, repository: repository, progress: progress)
            try await mover.copy { phase = $0 }
            phase = "switch"
            progress(MoveProgress(phase: phase, detail: ""))
            guard let switched = try await repository.finishMove(graphID: graph.id, connectionID: targetRecord?.id) else {
                throw KTProvisionError(code: .conflict, message: "the graph stopped moving during the switch")
            }
            // The source stays until other processes have dropped their sessions to it.
            phase = "drop-source"
            progress(MoveProgress(phase: phase, detail: ""))
            try? await Task.sleep(for: grace)
            await mover.dropSource()
            logger.debug("graph moved", metadata: ["kt.graph": "\(slug)", "kt.move.target": "\(targetKey)"])
            return switched
        } catch {
            let reason = "\(phase): \(Self.describe(error))"
            if phase != "drop-source" { try? await rollBackMove(moving, reason: reason) }
            throw KTProvisionError(code: .stepFailed, message: "the move of '\(slug)' stopped at \(reason); the graph stays on its source")
        }
    }

    /// Undoes a move that did not switch: lifts the write pause on the source, drops the
    /// target's schemas and collections, and makes the graph active again.
    func rollBackMove(_ graph: Graph, reason: String) async throws {
        let repository = GraphRepository(controlPlane, logger: logger)
        let source = try await targets(for: graph)
        let schema = try GraphSlug(graph.slug).schemaName
        if let key = graph.moveTarget, let target = try? GraphTargets.resolve(connectionKey: key, schema: schema, settings: settings) {
            let mover = GraphMover(provisioner: self, graph: graph, source: source, target: target, repository: repository, progress: { _ in })
            // The pause must go; a target that cannot be reached keeps its leftovers until the
            // next move to it (which drops them first).
            try await mover.liftPause()
            do {
                try await mover.dropTarget()
            } catch {
                logger.debug("a failed move's target was not cleaned", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(Self.describe(error))"])
            }
        }
        try await repository.abortMove(graphID: graph.id, reason: reason)
    }
}

/// The copying half of a move, and its undo.
struct GraphMover: Sendable {
    let provisioner: GraphProvisioner
    let graph: Graph
    let source: GraphTargets
    let target: GraphTargets
    let repository: GraphRepository
    let progress: @Sendable (MoveProgress) -> Void

    var logger: Logger { provisioner.logger }
    var schema: SchemaName { source.schema }
    /// Whether the target pair has a Qdrant of its own (else the collections stay where they are).
    var copiesPoints: Bool { !QdrantClient.sameServer(source.qdrantURL, target.qdrantURL) }

    /// Tables of the source's write-db that stay writable during the pause: the sync's own.
    static let unfenced: Set<String> = ["sync_watermarks", "sync_failures", "write_tombstones"]

    private func step(_ phase: String, _ setPhase: (String) -> Void) async throws {
        setPhase(phase)
        logger.debug("move step", metadata: ["kt.graph": "\(graph.slug)", "kt.move.phase": "\(phase)"])
        progress(MoveProgress(phase: phase, detail: ""))
        try await repository.setMovePhase(graphID: graph.id, phase: phase)
    }

    /// Everything before the switch.
    func copy(_ setPhase: (String) -> Void) async throws {
        try await step("prepare-target", setPhase)
        try await dropTarget()
        try await target.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { graphDB, writeDB in
            for (connection, set) in [(graphDB, MigrationSet.graphData), (writeDB, .writeData)] {
                try await connection.execute(simple: "CREATE SCHEMA \(schema.quoted)", logger: logger)
                try await Migrator.migrate([set], schema: schema, on: connection, logger: logger)
            }
        }
        let collections = QdrantCollections(graphSlug: graph.slug)
        if copiesPoints {
            _ = try await provisioner.withQdrant(target) { try await $0.ensureGraphCollections(collections, vectorSize: provisioner.settings.embeddingDimensions) }
        }
        // The watermarks first, then graph-db's snapshot: graph-db commits before the sync
        // records a watermark, so the snapshot holds at least what these watermarks cover.
        let watermarks = try await source.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { _, writeDB in
            try await writeDB.query("SELECT table_name, graph_slug, last_synced_at FROM \(TableName("sync_watermarks", in: schema))", logger: logger).rows
        }
        try await step("copy-graph-db", setPhase)
        let graphRows = try await copyTables(graphSide: true)
        progress(MoveProgress(phase: "copy-graph-db", detail: "\(graphRows) rows"))
        if copiesPoints {
            try await step("copy-points", setPhase)
            var copied = 0
            for name in collections.all { copied += try await copyPoints(name, onlyChanged: false) }
            progress(MoveProgress(phase: "copy-points", detail: "\(copied) points"))
        }

        try await step("pause-writes", setPhase)
        try await pauseWrites()
        try await step("copy-write-db", setPhase)
        let writeRows = try await copyTables(graphSide: false)
        progress(MoveProgress(phase: "copy-write-db", detail: "\(writeRows) rows"))
        try await target.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { _, writeDB in
            let table = TableName("sync_watermarks", in: schema)
            try await writeDB.withTransaction(logger: logger) { t in
                try await t.query("DELETE FROM \(table)")
                for row in watermarks {
                    try await t.query("INSERT INTO \(table) (table_name, graph_slug, last_synced_at) VALUES (\(try row.decode(0, as: String.self)), \(try row.decode(1, as: String.self)), \(try row.decode(2, as: Date.self)))")
                }
            }
        }
        try await step("catch-up", setPhase)
        for side in [source, target] { try await syncUntilIdle(side) }
        if copiesPoints {
            var copied = 0
            for name in collections.all { copied += try await copyPoints(name, onlyChanged: true) }
            progress(MoveProgress(phase: "catch-up", detail: "\(copied) points"))
        }
        try await step("verify", setPhase)
        try await verify()
    }

    // MARK: Tables

    /// Copies every table of one side (graph-db or write-db) from source to target: the source
    /// in one snapshot, the target in one transaction. Returns the rows copied.
    private func copyTables(graphSide: Bool) async throws -> Int {
        try await source.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { sourceGraph, sourceWrite in
            try await target.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { targetGraph, targetWrite in
                let (from, to) = graphSide ? (sourceGraph, targetGraph) : (sourceWrite, targetWrite)
                try await from.execute(simple: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                try await to.execute(simple: "BEGIN", logger: logger)
                var rows = 0
                do {
                    for table in try await SchemaTable.list(schema, on: from, logger: logger) {
                        let copied = try await to.copyIn(table.name, columns: table.columns, logger: logger) { writer in
                            try await from.copyOut(table.name, columns: table.columns, logger: logger) { try await writer.write($0) }
                        }
                        rows += copied
                    }
                    try await to.execute(simple: "COMMIT", logger: logger)
                    try await from.execute(simple: "COMMIT", logger: logger)
                } catch {
                    try? await to.execute(simple: "ROLLBACK", logger: logger)
                    try? await from.execute(simple: "ROLLBACK", logger: logger)
                    throw error
                }
                return rows
            }
        }
    }

    /// Per table: `rows:checksum` (an order-free sum of each row's hash, times in UTC).
    private func digests(_ side: GraphTargets, graphSide: Bool) async throws -> [String: String] {
        try await side.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { graphDB, writeDB in
            let connection = graphSide ? graphDB : writeDB
            return try await connection.withTransaction(logger: logger) { t in
                try await t.query("SELECT set_config('TimeZone', 'UTC', true)")
                var result: [String: String] = [:]
                for table in try await SchemaTable.list(schema, on: connection, logger: logger) where graphSide || table.name.name != "sync_watermarks" {
                    let row = try await t.query("""
                        SELECT count(*), coalesce(sum(('x' || substr(md5(r::text), 1, 15))::bit(60)::bigint), 0)::text FROM \(table.name) r
                        """).rows[0]
                    result[table.name.name] = "\(try row.decode(0, as: Int.self)):\(try row.decode(1, as: String.self))"
                }
                return result
            }
        }
    }

    private func verify() async throws {
        for graphSide in [false, true] {
            let before = try await digests(source, graphSide: graphSide), after = try await digests(target, graphSide: graphSide)
            for (table, digest) in before where after[table] != digest {
                throw KTProvisionError(code: .stepFailed, message: "table \(table) differs after the copy (\(digest) against \(after[table] ?? "missing"))")
            }
        }
        guard copiesPoints else { return }
        for name in QdrantCollections(graphSlug: graph.slug).all {
            let from = try await provisioner.withQdrant(source) { try await $0.count(name) }
            let to = try await provisioner.withQdrant(target) { try await $0.count(name) }
            guard from == to else { throw KTProvisionError(code: .stepFailed, message: "collection \(name) has \(from) points in the source and \(to) in the target") }
        }
    }

    /// Syncs `side`'s write-db into its graph-db until nothing is left (waiting while another
    /// process holds the graph's sync lock).
    private func syncUntilIdle(_ side: GraphTargets) async throws {
        // The graph system's pools when the provisioner has them; else pools for this sync alone.
        if let resources = provisioner.resources {
            return try await syncUntilIdle(graphPool: try resources.pool(for: side.graphEndpoint), writePool: try resources.pool(for: side.writeEndpoint))
        }
        let application = "kt-move-\(graph.slug)", settings = PoolSettings(size: 2, maxOverflow: 1, timeout: .seconds(30), recycle: .seconds(600))
        let graphPool = PostgresConnectionPool(configuration: .init(connection: side.graphEndpoint.oneOffConnection(application: application),
                                                                    pool: settings, label: "move graph-db"), backgroundLogger: logger)
        let writePool = PostgresConnectionPool(configuration: .init(connection: side.writeEndpoint.oneOffConnection(application: application),
                                                                    pool: settings, label: "move write-db"), backgroundLogger: logger)
        do {
            try await syncUntilIdle(graphPool: graphPool, writePool: writePool)
            await graphPool.shutdown()
            await writePool.shutdown()
        } catch {
            await graphPool.shutdown()
            await writePool.shutdown()
            throw error
        }
    }

    private func syncUntilIdle(graphPool: PostgresConnectionPool, writePool: PostgresConnectionPool) async throws {
        let engine = SyncEngine(writeSession: DatabaseSession(pool: writePool, schema: schema), graphSession: DatabaseSession(pool: graphPool, schema: schema),
                                graphSlug: graph.slug, settings: provisioner.settings.sync, logger: logger)
        // Another process may hold the graph's sync lock for a cycle: wait for it. What does not
        // come to rest shows in the verification that follows.
        try await engine.syncUntilIdle(maxCycles: 600, busyRetry: .milliseconds(100))
    }

    // MARK: The write pause

    private func pauseWrites() async throws {
        try await source.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { _, writeDB in
            let tables = try await SchemaTable.list(schema, on: writeDB, logger: logger).filter { !Self.unfenced.contains($0.name.name) }
            try await writeDB.withTransaction(logger: logger) { t in
                try await t.query("SELECT set_config('lock_timeout', '10s', true)")
                try await t.connection.execute(simple: """
                    CREATE OR REPLACE FUNCTION \(schema.quoted).kt_move_fence() RETURNS trigger LANGUAGE plpgsql AS $kt$
                    BEGIN
                        RAISE EXCEPTION 'graph is moving to another database pair; retry shortly' USING ERRCODE = '\(GraphProvisioner.writesPausedSQLState)';
                    END $kt$
                    """, logger: logger)
                for table in tables {
                    try await t.connection.execute(simple: """
                        CREATE TRIGGER kt_move_fence BEFORE INSERT OR UPDATE OR DELETE ON \(table.name.sql)
                            FOR EACH STATEMENT EXECUTE FUNCTION \(schema.quoted).kt_move_fence();
                        CREATE TRIGGER kt_move_fence_truncate BEFORE TRUNCATE ON \(table.name.sql)
                            FOR EACH STATEMENT EXECUTE FUNCTION \(schema.quoted).kt_move_fence()
                        """, logger: logger)
                }
            }
        }
    }

    /// Lifts the write pause on the source (idempotent).
    func liftPause() async throws {
        try await source.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { _, writeDB in
            try await writeDB.execute(simple: "DROP FUNCTION IF EXISTS \(schema.quoted).kt_move_fence() CASCADE", logger: logger)
        }
    }

    // MARK: Points

    /// Copies a collection's points from source to target: all of them, or (`onlyChanged`)
    /// those missing in the target or with another payload, deleting those the source lacks.
    /// Returns the points written.
    private func copyPoints(_ collection: String, onlyChanged: Bool) async throws -> Int {
        try await provisioner.withQdrant(source) { from in
            try await provisioner.withQdrant(target) { to in
                var present: [String: [String: JSONValue]] = [:]
                if onlyChanged {
                    var offset: String?
                    repeat {
                        let page = try await to.scroll(collection, limit: 512, offset: offset, withPayload: true, withVectors: false)
                        for point in page.points { present[point.id] = point.payload ?? [:] }
                        offset = page.nextOffset
                    } while offset != nil
                }
                var offset: String?, written = 0
                repeat {
                    let page = try await from.scroll(collection, limit: 256, offset: offset, withPayload: true, withVectors: !onlyChanged)
                    var wanted = page.points
                    if onlyChanged {
                        wanted = page.points.filter { present[$0.id] != ($0.payload ?? [:]) }
                        for point in page.points { present[point.id] = nil }
                        if !wanted.isEmpty {
                            wanted = try await from.retrieve(collection, ids: wanted.compactMap { UUID(uuidString: $0.id) }, withPayload: true, withVectors: true)
                        }
                    }
                    let points = wanted.compactMap { point in
                        UUID(uuidString: point.id).flatMap { id in point.vector.map { QdrantPoint(id: id, vector: $0, payload: point.payload ?? [:]) } }
                    }
                    if !points.isEmpty { try await to.upsert(collection, points: points) }
                    written += points.count
                    offset = page.nextOffset
                } while offset != nil
                if onlyChanged, !present.isEmpty { try await to.delete(collection, ids: present.keys.compactMap(UUID.init(uuidString:))) }
                return written
            }
        }
    }

    // MARK: Cleaning up

    /// Drops the target's schemas and (when it has a Qdrant of its own) collections.
    func dropTarget() async throws { try await drop(target) }

    /// After the switch: drops the source's schemas and (when the target has a Qdrant of its
    /// own) collections. Failures are logged: the graph is already served from the target.
    func dropSource() async {
        do {
            try await drop(source)
        } catch {
            logger.warning("a moved graph's source was not dropped", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(GraphProvisioner.describe(error))"])
        }
    }

    private func drop(_ side: GraphTargets) async throws {
        try await side.withConnections(application: "kt-move-\(graph.slug)", logger: logger) { graphDB, writeDB in
            for connection in [graphDB, writeDB] { try await connection.execute(simple: "DROP SCHEMA IF EXISTS \(schema.quoted) CASCADE", logger: logger) }
        }
        guard copiesPoints else { return }
        try await provisioner.withQdrant(side) { qdrant in
            for name in QdrantCollections(graphSlug: graph.slug).all { _ = try await qdrant.deleteCollection(name) }
        }
    }
}
