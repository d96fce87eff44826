import Foundation
import KTConfig
import KTDB
import KTGraph
import KTQdrant
import Logging

/// The copying half of a move, and its undo.
///
/// The bulk is copied while the graph keeps working: each database in one COPY snapshot, with
/// a row trigger on the source recording the keys of whatever changes from before that
/// snapshot on. The write pause then covers only those rows (``GraphMover/catchUp``).
struct GraphMover: Sendable {
    let provisioner: GraphProvisioner
    let graph: Graph
    let source: GraphTargets
    let target: GraphTargets
    let repository: GraphRepository
    let progress: @Sendable (MoveProgress) -> Void

    var logger: Logger { provisioner.logger }
    var schema: SchemaName { source.schema }
    var application: String { "kt-move-\(graph.slug)" }
    /// Whether the target pair has a Qdrant of its own (else the collections stay where they are).
    var copiesPoints: Bool { !QdrantClient.sameServer(source.qdrantURL, target.qdrantURL) }

    private func step(_ phase: String, _ setPhase: (String) -> Void) async throws {
        setPhase(phase)
        logger.debug("move step", metadata: ["kt.graph": "\(graph.slug)", "kt.move.phase": "\(phase)"])
        progress(MoveProgress(phase: phase, detail: ""))
        try await repository.setMovePhase(graphID: graph.id, phase: phase)
    }

    /// Everything up to and including the switch, which `switchOver` performs while the source
    /// is still paused and the graph's sync lock is held.
    func run(_ setPhase: (String) -> Void, switchOver: () async throws -> Graph) async throws -> Graph {
        try await step("prepare-target", setPhase)
        try await dropTarget()
        try await target.withConnections(application: application, logger: logger) { graphDB, writeDB in
            for (connection, set) in [(graphDB, MigrationSet.graphData), (writeDB, .writeData)] {
                try await connection.execute(simple: "CREATE SCHEMA \(schema.quoted)", logger: logger)
                try await Migrator.migrate([set], schema: schema, on: connection, logger: logger)
            }
        }
        let collections = QdrantCollections(graphSlug: graph.slug)
        if copiesPoints {
            _ = try await provisioner.withQdrant(target) { try await $0.ensureGraphCollections(collections, vectorSize: provisioner.settings.embeddingDimensions) }
        }
        // Recording starts before the snapshots: a change either is in a snapshot or has its key recorded.
        try await installRecording()

        // The two databases are copied at the same time (a pair's two databases may be on
        // different servers); both phases start together.
        try await step("copy-graph-db", setPhase)
        try await step("copy-write-db", setPhase)
        async let graphCopy = copySnapshot(graphSide: true)
        async let writeCopy = copySnapshot(graphSide: false)
        let (graphRows, writeRows) = try await (graphCopy, writeCopy)
        progress(MoveProgress(phase: "copy-graph-db", detail: "\(graphRows) rows"))
        progress(MoveProgress(phase: "copy-write-db", detail: "\(writeRows) rows"))
        if copiesPoints {
            try await step("copy-points", setPhase)
            var copied = 0
            for name in collections.all { copied += try await copyAllPoints(name) }
            progress(MoveProgress(phase: "copy-points", detail: "\(copied) points"))
        }

        try await step("pause-writes", setPhase)
        try await pauseWrites()
        try await step("catch-up", setPhase)
        return try await source.withConnections(application: application, logger: logger) { sourceGraph, sourceWrite in
            try await target.withConnections(application: application, logger: logger) { targetGraph, targetWrite in
                // Four transactions: the source's write-db one holds the sync's lock to the
                // switch (no cycle changes the source meanwhile); the target's commit once verified.
                let all = [sourceWrite, sourceGraph, targetWrite, targetGraph]
                for connection in all { try await connection.execute(simple: "BEGIN", logger: logger) }
                do {
                    for connection in all { try await connection.query("SELECT set_config('TimeZone', 'UTC', true)", logger: logger) }
                    try await sourceWrite.query("SELECT set_config('lock_timeout', '30s', true)", logger: logger)
                    try await sourceWrite.query("SELECT pg_advisory_xact_lock(hashtextextended(\(SyncEngine.lockName(graphSlug: graph.slug)), 0))", logger: logger)
                    let writeChanges = try await catchUp(from: sourceWrite, to: targetWrite)
                    let graphChanges = try await catchUp(from: sourceGraph, to: targetGraph)
                    var detail = "\(writeChanges.rows + graphChanges.rows) rows"
                    // Each collection's point counts that still differ after the catch-up.
                    var pointsDiffering: [(String, Int, Int)] = []
                    if copiesPoints {
                        // A worker writes a point after its row commits: one in flight when the
                        // pause began lands later, how much later depends on Qdrant's load. Counts
                        // that differ are caught up again, backing off, for up to
                        // `pointsSettleTimeout`; writes stay paused only while they differ.
                        var looked = try await catchUpPoints(writeChanges.tables)
                        let deadline = ContinuousClock.now + Self.pointsSettleTimeout
                        var delay = Duration.milliseconds(100)
                        while true {
                            pointsDiffering = try await pointCounts().filter { $0.1 != $0.2 }
                            guard !pointsDiffering.isEmpty, ContinuousClock.now + delay < deadline else { break }
                            try await Task.sleep(for: delay)
                            delay = min(delay * 2, .seconds(2))
                            looked += try await catchUpPoints(writeChanges.tables)
                        }
                        detail += ", \(looked) points"
                    }
                    progress(MoveProgress(phase: "catch-up", detail: detail))
                    try await step("verify", setPhase)
                    try await verify(writeChanges.tables, from: sourceWrite, to: targetWrite)
                    try await verify(graphChanges.tables, from: sourceGraph, to: targetGraph)
                    if let (name, from, to) = pointsDiffering.first {
                        throw KTProvisionError(code: .stepFailed, message: "collection \(name) has \(from) points in the source and \(to) in the target")
                    }
                    for connection in [targetWrite, targetGraph] { try await connection.execute(simple: "COMMIT", logger: logger) }
                    let switched = try await switchOver()
                    for connection in [sourceWrite, sourceGraph] { try await connection.execute(simple: "COMMIT", logger: logger) }
                    return switched
                } catch {
                    for connection in all { try? await connection.execute(simple: "ROLLBACK", logger: logger) }
                    throw error
                }
            }
        }
    }

    // MARK: The snapshot

    /// Copies every table of one side (graph-db or write-db) from source to target: the source
    /// in one snapshot, the target in one transaction, then compares each table's row count and
    /// checksum in that snapshot with the target's. Returns the rows copied.
    private func copySnapshot(graphSide: Bool) async throws -> Int {
        try await source.withConnections(application: application, logger: logger) { sourceGraph, sourceWrite in
            try await target.withConnections(application: application, logger: logger) { targetGraph, targetWrite in
                let (from, to) = graphSide ? (sourceGraph, targetGraph) : (sourceWrite, targetWrite)
                try await from.execute(simple: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                try await to.execute(simple: "BEGIN", logger: logger)
                var rows = 0
                do {
                    let tables = try await SchemaTable.list(schema, on: from, logger: logger)
                    for table in tables {
                        let copied = try await to.copyIn(table.name, columns: table.columns, logger: logger) { writer in
                            try await from.copyOut(table.name, columns: table.columns, logger: logger) { try await writer.write($0) }
                        }
                        rows += copied
                    }
                    // Rows came with their ids: a serial key's next value must come after them.
                    try await SchemaTable.advanceSequences(schema, on: to, logger: logger)
                    async let before = Self.digests(tables, on: from, logger: logger)
                    async let after = Self.digests(tables, on: to, logger: logger)
                    let (expected, copied) = try await (before, after)
                    for table in tables where expected[table.name.name] != copied[table.name.name] {
                        throw KTProvisionError(
                            code: .stepFailed, message: "table \(table.name.name) differs after the copy (\(expected[table.name.name] ?? "") against \(copied[table.name.name] ?? "missing"))")
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

    /// Per table, in the connection's open transaction: `rows:checksum`, the checksum an
    /// order-free sum of each row's hash (times written in UTC).
    static func digests(_ tables: [SchemaTable], on connection: PostgresConnection, logger: Logger) async throws -> [String: String] {
        try await connection.query("SELECT set_config('TimeZone', 'UTC', true)", logger: logger)
        var result: [String: String] = [:]
        for table in tables {
            let row = try await connection.query("SELECT count(*), \(unsafeRaw: rowHashSum) FROM \(unsafeRaw: table.name.sql) r", logger: logger).rows[0]
            result[table.name.name] = "\(try row.decode(0, as: Int.self)):\(try row.decode(1, as: String.self))"
        }
        return result
    }

    /// How long the catch-up waits, at most, for point counts that differ to settle (a point
    /// written just after its row is still on its way to Qdrant) before the move fails.
    static let pointsSettleTimeout: Duration = .seconds(10)

    /// The checksum of the rows `r`: the sum of 60 bits of each row's MD5, as text.
    static let rowHashSum = "coalesce(sum(('x' || substr(md5(r::text), 1, 15))::bit(60)::bigint), 0)::text"

    // MARK: Points

    /// Points read with their vectors, as points to write (one without an id or a vector is skipped).
    static func writable(_ points: [QdrantScoredPoint]) -> [QdrantPoint] {
        points.compactMap { point in
            UUID(uuidString: point.id).flatMap { id in point.vector.map { QdrantPoint(id: id, vector: $0, payload: point.payload ?? [:]) } }
        }
    }

    /// Each collection's point count in the source and in the target.
    private func pointCounts() async throws -> [(String, Int, Int)] {
        var counts: [(String, Int, Int)] = []
        for name in QdrantCollections(graphSlug: graph.slug).all {
            let from = try await provisioner.withQdrant(source) { try await $0.count(name) }
            let to = try await provisioner.withQdrant(target) { try await $0.count(name) }
            counts.append((name, from, to))
        }
        return counts
    }

    /// The points of what changed since the snapshots: a node's point has the id of its
    /// write-db key (``GraphKeys/id(forKey:)``), a fact's its id. Each is copied again from the
    /// source, or deleted in the target when the source has none. A collection whose table was
    /// truncated is compared whole. Returns the points looked at.
    private func catchUpPoints(_ changed: [ChangedTable]) async throws -> Int {
        let collections = QdrantCollections(graphSlug: graph.slug)
        var total = 0
        for (table, collection, field) in [(WriteTable.nodes, collections.nodes, "key"), (WriteTable.facts, collections.facts, "id")] {
            guard let change = changed.first(where: { $0.table.name.name == table.name }) else { continue }
            if change.whole {
                total += try await reconcilePoints(collection)
                continue
            }
            let keys = (try JSONSerialization.jsonObject(with: Data(change.keys.utf8)) as? [[String: Any]]) ?? []
            let ids = keys.compactMap { key in (key[field] as? String).flatMap { field == "key" ? GraphKeys.id(forKey: $0) : UUID(uuidString: $0) } }
            for start in stride(from: 0, to: ids.count, by: 256) {
                let chunk = Array(ids[start..<min(start + 256, ids.count)])
                let found = try await provisioner.withQdrant(source) { try await $0.retrieve(collection, ids: chunk, withPayload: true, withVectors: true) }
                let points = Self.writable(found)
                let gone = Set(chunk).subtracting(points.map(\.id))
                try await provisioner.withQdrant(target) { qdrant in
                    if !points.isEmpty { try await qdrant.upsert(collection, points: points) }
                    if !gone.isEmpty { try await qdrant.delete(collection, ids: Array(gone)) }
                }
                total += chunk.count
            }
        }
        return total
    }

    /// Copies every point of a collection from source to target, a page at a time; the next
    /// page is read from the source while the current one is written to the target.
    /// Returns the points written.
    private func copyAllPoints(_ collection: String) async throws -> Int {
        try await provisioner.withQdrant(source) { from in
            try await provisioner.withQdrant(target) { to in
                var page = try await from.scroll(collection, limit: 256, offset: nil, withPayload: true, withVectors: true)
                var written = 0
                while true {
                    let offset = page.nextOffset
                    async let following = Self.page(of: collection, from: from, after: offset)
                    let points = Self.writable(page.points)
                    if !points.isEmpty { try await to.upsert(collection, points: points) }
                    written += points.count
                    guard let next = try await following else { return written }
                    page = next
                }
            }
        }
    }

    /// The page of 256 points with vectors after `offset`; `nil` after the last page.
    private static func page(of collection: String, from qdrant: QdrantClient, after offset: String?) async throws -> (points: [QdrantScoredPoint], nextOffset: String?)? {
        guard let offset else { return nil }
        return try await qdrant.scroll(collection, limit: 256, offset: offset, withPayload: true, withVectors: true)
    }

    /// Makes a collection of the target equal to the source's: points missing in the target or
    /// with another payload are copied, points the source lacks are deleted. Returns the points
    /// written.
    private func reconcilePoints(_ collection: String) async throws -> Int {
        try await provisioner.withQdrant(source) { from in
            try await provisioner.withQdrant(target) { to in
                var present: [String: [String: JSONValue]] = [:]
                var offset: String?
                repeat {
                    let page = try await to.scroll(collection, limit: 512, offset: offset, withPayload: true, withVectors: false)
                    for point in page.points { present[point.id] = point.payload ?? [:] }
                    offset = page.nextOffset
                } while offset != nil
                var written = 0
                repeat {
                    let page = try await from.scroll(collection, limit: 256, offset: offset, withPayload: true, withVectors: false)
                    let differing = page.points.filter { present[$0.id] != ($0.payload ?? [:]) }
                    for point in page.points { present[point.id] = nil }
                    if !differing.isEmpty {
                        let fetched = try await from.retrieve(collection, ids: differing.compactMap { UUID(uuidString: $0.id) }, withPayload: true, withVectors: true)
                        let points = Self.writable(fetched)
                        if !points.isEmpty { try await to.upsert(collection, points: points) }
                        written += points.count
                    }
                    offset = page.nextOffset
                } while offset != nil
                if !present.isEmpty { try await to.delete(collection, ids: present.keys.compactMap(UUID.init(uuidString:))) }
                return written
            }
        }
    }

    // MARK: Cleaning up

    /// Drops the target's schemas and (when it has a Qdrant of its own) collections.
    func dropTarget() async throws { try await drop(target) }

    /// After the switch: drops the source's schemas and (when the target has a Qdrant of its
    /// own) collections.
    func dropSource() async throws { try await drop(source) }

    private func drop(_ side: GraphTargets) async throws {
        try await side.withConnections(application: application, logger: logger) { graphDB, writeDB in
            for connection in [graphDB, writeDB] { try await connection.execute(simple: "DROP SCHEMA IF EXISTS \(schema.quoted) CASCADE", logger: logger) }
        }
        guard copiesPoints else { return }
        try await provisioner.withQdrant(side) { qdrant in
            for name in QdrantCollections(graphSlug: graph.slug).all { _ = try await qdrant.deleteCollection(name) }
        }
    }
}
