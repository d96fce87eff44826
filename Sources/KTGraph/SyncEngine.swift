import Foundation
public import KTConfig
public import KTDB
public import Logging

/// Copies one graph from write-db to graph-db.
///
/// What a cycle does, in order:
/// 1. Takes the graph's sync lock (a transaction-level advisory lock in write-db, held for the
///    cycle), so only one process syncs a graph at a time; another caller gets
///    ``KTGraphError/Code/syncBusy``.
/// 2. Walks the tables in the original's order (facts, nodes, edges, dimensions, counters):
///    rows with `updated_at` above the table's watermark, `batchSize` at a time (rows sharing the
///    last timestamp are taken together), each applied in its own savepoint.
/// 3. Applies tombstones (deletions recorded by a write-db trigger) the same way.
/// 4. Retries due rows of the deferral and dead-letter queue (`sync_failures`).
/// 5. Refreshes the denormalised counters of the nodes it touched (per batch).
///
/// Fixes over the original:
/// - Applying a row makes graph-db match the **current** write-db state of that key: a missing
///   row deletes, `fact_ids` are mirrored exactly (un-links propagate), rejected facts are left out.
/// - A row whose parent is not in graph-db yet (an edge whose node has not arrived) is
///   **deferred**: parked in `sync_failures` and retried every cycle, never left behind by the
///   watermark. Failures go to the same queue with exponential backoff and are abandoned after
///   `maxRetries`, recording the graph slug.
/// - The watermark never passes a write that may still commit: it stays below the start of the
///   oldest write transaction in progress in write-db and below the moment that was measured.
/// - When a node or fact arrives, the junctions and edges that were waiting for it are applied.
public struct SyncEngine: Sendable {
    /// The write-db session (schema-bound).
    public let writeSession: DatabaseSession
    /// The graph-db session (schema-bound).
    public let graphSession: DatabaseSession
    /// The graph's slug (watermarks and failures are recorded per slug).
    public let graphSlug: String
    /// Batch size, retries and backoff.
    public let settings: SyncSettings
    let logger: Logger

    /// Creates an engine.
    public init(writeSession: DatabaseSession, graphSession: DatabaseSession, graphSlug: String, settings: SyncSettings = SyncSettings(), logger: Logger) {
        self.writeSession = writeSession
        self.graphSession = graphSession
        self.graphSlug = graphSlug
        self.settings = settings
        var logger = logger
        logger[metadataKey: "kt.graph"] = "\(graphSlug)"
        self.logger = logger
    }

    /// What one cycle did.
    public struct Report: Sendable, Hashable {
        /// Rows applied per table.
        public var applied: [String: Int] = [:]
        /// Tombstones applied.
        public var deleted = 0
        /// Rows parked because a parent has not arrived.
        public var deferred = 0
        /// Rows that failed (queued for retry).
        public var failed = 0
        /// Queue rows that succeeded on retry.
        public var recovered = 0
        /// Queue rows given up after `maxRetries`.
        public var abandoned = 0
        /// Table batches that failed as a whole and were applied row by row instead (each row
        /// in its own savepoint, so only the bad rows fail).
        public var rowByRowBatches = 0
        /// Total rows applied.
        public var totalApplied: Int { applied.values.reduce(0, +) + deleted + recovered }
    }

    /// The tables, in the order they are applied.
    public static let tables = ["write_facts", "write_nodes", "write_edges", "write_dimensions", "write_node_counters"]

    /// Runs one cycle.
    ///
    /// - Throws: ``KTGraphError/Code/syncBusy`` when another process is syncing this graph;
    ///   database errors outside a row (a row's own error goes to the queue instead).
    @discardableResult
    public func syncCycle() async throws -> Report {
        try await writeSession.withTransaction(logger: logger) { lock in
            let acquired = try await lock.query("SELECT pg_try_advisory_xact_lock(hashtextextended(\("kt-sync:" + graphSlug), 0))")
                .first?.decode(0, as: Bool.self) ?? false
            guard acquired else { throw KTGraphError(code: .syncBusy, message: "another process is syncing graph '\(graphSlug)'") }
            // The batch statements are costed high enough to trigger JIT compilation, which costs
            // more than they take to run.
            try await lock.connection.execute(simple: "SET LOCAL jit = off", logger: logger)
            var report = Report()
            let cycleStart = try await lock.query("SELECT clock_timestamp()").first?.decode(0, as: Date.self) ?? Date()
            for table in Self.tables { try await syncTable(table, lock, &report) }
            try await syncTombstones(lock, &report)
            try await retryQueue(lock, &report, dueBefore: cycleStart)
            logger.debug("sync cycle done", metadata: [
                "kt.applied": "\(report.totalApplied)", "kt.deferred": "\(report.deferred)", "kt.failed": "\(report.failed)",
            ])
            return report
        }
    }

    /// Runs cycles until one applies nothing (or `maxCycles`); returns the summed report.
    @discardableResult
    public func syncUntilIdle(maxCycles: Int = 100) async throws -> Report {
        var total = Report()
        for _ in 0..<maxCycles {
            let report = try await syncCycle()
            for (table, count) in report.applied { total.applied[table, default: 0] += count }
            total.deleted += report.deleted
            total.deferred += report.deferred
            total.failed += report.failed
            total.recovered += report.recovered
            total.abandoned += report.abandoned
            total.rowByRowBatches += report.rowByRowBatches
            if report.totalApplied == 0 { break }
        }
        return total
    }

    // MARK: Watermarks

    private func watermark(_ table: String, _ w: PostgresTransaction) async throws -> Date {
        try await w.query("SELECT last_synced_at FROM sync_watermarks WHERE table_name = \(table) AND graph_slug = \(graphSlug)")
            .first?.decode(0, as: Date.self) ?? Date(timeIntervalSince1970: 0)
    }

    private func setWatermark(_ table: String, _ value: Date) async throws {
        try await writeSession.query("""
            INSERT INTO sync_watermarks (table_name, graph_slug, last_synced_at) VALUES (\(table), \(graphSlug), \(value))
            ON CONFLICT (table_name, graph_slug) DO UPDATE SET last_synced_at = GREATEST(sync_watermarks.last_synced_at, EXCLUDED.last_synced_at)
            """, logger: logger)
    }

    /// How far a watermark may move, measured before the rows are read: below the start of the
    /// oldest write transaction in progress in write-db (its rows carry `updated_at` at or after
    /// it), and below the moment of measuring (a transaction that starts afterwards and is still
    /// uncommitted when the rows are read writes `updated_at` after that moment).
    private func safeBound(_ w: PostgresTransaction) async throws -> Date {
        try await w.query("""
            SELECT least(clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity
                WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()))
            """).first?.decode(0, as: Date.self) ?? Date(timeIntervalSince1970: 0)
    }

    /// Moves `table`'s watermark from `since` to the last row read, but never up to `bound`
    /// (rows at or after it are read again next cycle; applying a row twice is idempotent).
    private func advanceWatermark(_ table: String, from since: Date, through last: Date, bound: Date) async throws {
        let next = min(last, bound.addingTimeInterval(-0.000_001))
        if next > since { try await setWatermark(table, next) }
    }

    // MARK: Tables

    private static func keyColumn(_ table: String) -> String { table == "write_facts" ? "id::text" : table == "write_node_counters" ? "node_key" : "key" }

    private func syncTable(_ table: String, _ w: PostgresTransaction, _ report: inout Report) async throws {
        let since = try await watermark(table, w)
        let bound = try await safeBound(w)
        let keyColumn = Self.keyColumn(table)
        var rows = try await w.query("""
            SELECT \(unsafeRaw: keyColumn) AS key, updated_at FROM \(unsafeRaw: table) WHERE updated_at > \(since)
            ORDER BY updated_at, \(unsafeRaw: keyColumn) LIMIT \(settings.batchSize)
            """).rows.map { row throws(KTDBError) in (try row.decode("key", as: String.self), try row.decode("updated_at", as: Date.self)) }
        guard let last = rows.last else { return }
        if rows.count == settings.batchSize {
            // Take every row sharing the last timestamp, so the watermark can move past it.
            let ties = try await w.query("""
                SELECT \(unsafeRaw: keyColumn) AS key FROM \(unsafeRaw: table) WHERE updated_at = \(last.1)
                """).rows.map { row throws(KTDBError) in try row.decode("key", as: String.self) }
            let have = Set(rows.map(\.0))
            rows += ties.filter { !have.contains($0) }.map { ($0, last.1) }
        }
        let outcomes = try await apply(rows.map { (table, $0.0) }, w, &report)
        try await record(outcomes, &report, retrying: false)
        try await advanceWatermark(table, from: since, through: last.1, bound: bound)
    }

    private func syncTombstones(_ w: PostgresTransaction, _ report: inout Report) async throws {
        let since = try await watermark("write_tombstones", w)
        let bound = try await safeBound(w)
        let rows = try await w.query("""
            SELECT table_name, record_key, deleted_at FROM write_tombstones WHERE deleted_at > \(since) ORDER BY deleted_at, id LIMIT \(settings.batchSize)
            """).rows.map { row throws(KTDBError) in
            (try row.decode("table_name", as: String.self), try row.decode("record_key", as: String.self), try row.decode("deleted_at", as: Date.self))
        }
        guard let last = rows.last else { return }
        // A tombstone applies the current state of its key: if the row was re-created, this upserts it.
        let outcomes = try await apply(rows.map { ($0.0, $0.1) }, w, &report)
        for outcome in outcomes where outcome.result == .applied { report.deleted += 1 }
        try await record(outcomes.filter { $0.result != .applied }, &report, retrying: false)
        try await advanceWatermark("write_tombstones", from: since, through: last.2, bound: bound)
        // Tombstones a day behind the watermark are no longer needed.
        try await writeSession.query("DELETE FROM write_tombstones WHERE deleted_at <= \(since)::timestamptz - interval '1 day'", logger: logger)
    }

    // MARK: Queue

    private func retryQueue(_ w: PostgresTransaction, _ report: inout Report, dueBefore cycleStart: Date) async throws {
        let due = try await w.query("""
            SELECT table_name, record_key FROM sync_failures
            WHERE graph_slug = \(graphSlug) AND status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= \(cycleStart))
            ORDER BY next_retry_at NULLS FIRST LIMIT \(settings.batchSize)
            """).rows.map { row throws(KTDBError) in (try row.decode("table_name", as: String.self), try row.decode("record_key", as: String.self)) }
        guard !due.isEmpty else { return }
        let outcomes = try await apply(due, w, &report)
        try await record(outcomes, &report, retrying: true)
    }

    enum Result: Equatable { case applied, deferred(String), failed(String) }
    struct Outcome { var table: String; var key: String; var result: Result }

    /// Records outcomes: applied rows leave the queue; deferred and failed rows enter it or
    /// move on in it (backoff doubling; abandoned at `maxRetries`).
    private func record(_ outcomes: [Outcome], _ report: inout Report, retrying: Bool) async throws {
        struct Queued: Encodable { var table: String, key: String, reason: String, base: Double }
        var cleared: [(String, String)] = [], queued: [String: Queued] = [:]
        let retryBase = Double(settings.retryBase.components.seconds) + Double(settings.retryBase.components.attoseconds) / 1e18
        for outcome in outcomes {
            switch outcome.result {
            case .applied:
                if retrying { report.recovered += 1 } else if outcome.table != "write_tombstones" { report.applied[outcome.table, default: 0] += 1 }
                cleared.append((outcome.table, outcome.key))
            case .deferred(let reason):
                // Deferrals retry on the next cycle.
                report.deferred += 1
                queued[outcome.table + "\u{0}" + outcome.key] = Queued(table: outcome.table, key: outcome.key, reason: reason, base: 0)
            case .failed(let reason):
                // Failures back off exponentially.
                report.failed += 1
                queued[outcome.table + "\u{0}" + outcome.key] = Queued(table: outcome.table, key: outcome.key, reason: reason, base: retryBase)
            }
        }
        if !queued.isEmpty {
            let abandoned = try await writeSession.query("""
                INSERT INTO sync_failures AS f (id, table_name, record_key, error_message, retry_count, status, graph_slug, next_retry_at)
                SELECT gen_random_uuid(), b.table, b.key, b.reason, 1, 'pending', \(graphSlug), now() + make_interval(secs => b.base * 2)
                FROM jsonb_to_recordset(\(try Self.json(Array(queued.values)))) AS b("table" text, key text, reason text, base float8)
                ON CONFLICT (table_name, record_key, graph_slug) DO UPDATE SET
                    retry_count = f.retry_count + 1, error_message = EXCLUDED.error_message, updated_at = now(),
                    next_retry_at = now() + (EXCLUDED.next_retry_at - now()) * power(2, f.retry_count)::float8,
                    status = CASE WHEN f.retry_count + 1 >= \(settings.maxRetries) THEN 'abandoned' ELSE 'pending' END
                RETURNING table_name, record_key, status, error_message
                """, logger: logger).rows.filter { row in (try? row.decode(2, as: String.self)) == "abandoned" }
            for row in abandoned {
                report.abandoned += 1
                let table = try row.decode(0, as: String.self), key = try row.decode(1, as: String.self), reason = try row.decode(3, as: String.self)
                logger.warning("sync gave up on a row", metadata: ["kt.table": "\(table)", "kt.key": "\(key)", "kt.reason": "\(reason)"])
            }
        }
        if !cleared.isEmpty {
            try await writeSession.query("""
                DELETE FROM sync_failures WHERE graph_slug = \(graphSlug)
                  AND (table_name, record_key) IN (SELECT * FROM unnest(\(cleared.map(\.0))::text[], \(cleared.map(\.1))::text[]))
                """, logger: logger)
        }
    }

    // MARK: Applying rows

    /// Applies the items in one graph-db transaction, table by table in the sync order: each
    /// table's keys set-based in a savepoint; if that fails, key by key in savepoints of their
    /// own (so one bad row fails alone). Then refreshes the counters of the nodes touched.
    private func apply(_ items: [(String, String)], _ w: PostgresTransaction, _ report: inout Report) async throws -> [Outcome] {
        guard !items.isEmpty else { return [] }
        var keysByTable: [String: [String]] = [:]
        for (table, key) in items where keysByTable[table]?.contains(key) != true { keysByTable[table, default: []].append(key) }
        let order = Self.tables + keysByTable.keys.filter { !Self.tables.contains($0) }.sorted()
        let (outcomes, rowByRow) = try await graphSession.withTransaction(logger: logger) { transaction in
            var results: [String: Outcomes] = [:], rowByRow = 0
            try await transaction.connection.execute(simple: "SET LOCAL jit = off", logger: logger)
            var touched: Set<UUID> = []
            for table in order {
                guard let keys = keysByTable[table] else { continue }
                do {
                    var batchTouched: Set<UUID> = []
                    results[table] = try await transaction.withSavepoint { t in try await applyBatch(table, keys, w, t, touched: &batchTouched) }
                    touched.formUnion(batchTouched)
                    continue
                } catch {
                    logger.debug("sync batch failed; applying row by row", metadata: ["kt.table": "\(table)", "kt.error": "\(Self.message(error))"])
                }
                rowByRow += 1
                var outcomes: Outcomes = [:]
                for key in keys {
                    do {
                        outcomes[key] = try await transaction.withSavepoint { t in try await applyRow(table: table, key: key, w, t, touched: &touched) }
                    } catch {
                        logger.debug("sync row failed", metadata: ["kt.table": "\(table)", "kt.key": "\(key)", "kt.error": "\(Self.message(error))"])
                        outcomes[key] = .failed(Self.message(error))
                    }
                }
                results[table] = outcomes
            }
            try await GraphStats.refresh(Array(touched), transaction)
            return (items.map { table, key in Outcome(table: table, key: key, result: results[table]?[key] ?? .failed("not applied")) }, rowByRow)
        }
        report.rowByRowBatches += rowByRow
        return outcomes
    }

    private static func message(_ error: any Error) -> String { (error as? KTDBError)?.message ?? String(describing: error) }

    private func applyRow(table: String, key: String, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Result {
        switch table {
        case "write_facts": return try await applyFact(key, w, t, touched: &touched)
        case "write_nodes": return try await applyNode(key, w, t, touched: &touched)
        case "write_edges": return try await applyEdge(key, w, t, touched: &touched)
        case "write_dimensions": return try await applyDimension(key, w, t, touched: &touched)
        case "write_node_counters": return try await applyCounters(key, w, t)
        default: return .failed("unknown table \(table)")
        }
    }

    private func nodeExists(_ id: UUID, _ t: PostgresTransaction) async throws -> Bool {
        try await t.query("SELECT 1 FROM nodes WHERE id = \(id)").first != nil
    }

    private func applyFact(_ key: String, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Result {
        guard let id = UUID(uuidString: key) else { return .failed("not a fact id: \(key)") }
        guard let row = try await w.query("SELECT content, fact_type, dedup_status, created_at FROM write_facts WHERE id = \(id)").first else {
            let removed = try await t.query("DELETE FROM node_facts WHERE fact_id = \(id) RETURNING node_id").rows.map { row throws(KTDBError) in try row.decode(0, as: UUID.self) }
            touched.formUnion(removed)
            try await t.query("DELETE FROM facts WHERE id = \(id)")
            return .applied
        }
        guard try row.decode("dedup_status", as: String.self) == "ready" else { return .deferred("fact is not ready (dedup pending)") }
        try await t.query("""
            INSERT INTO facts (id, content, fact_type, created_at) VALUES (\(id), \(try row.decode("content", as: String.self)),
                \(try row.decode("fact_type", as: String.self)), \(try row.decode("created_at", as: Date.self)))
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type
            """)
        // Junctions that were waiting for this fact.
        let text = id.uuidString.lowercased()
        let nodes = try await w.query("""
            SELECT n.node_uuid FROM write_nodes n WHERE n.fact_ids @> ARRAY[\(text)]::text[]
              AND NOT EXISTS (SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid AND r.fact_id = \(id))
            """).rows.map { row throws(KTDBError) in try row.decode(0, as: UUID.self).uuidString }
        if !nodes.isEmpty {
            let linked = try await t.query("""
                INSERT INTO node_facts (node_id, fact_id) SELECT n.id, \(id) FROM nodes n WHERE n.id = ANY(\(nodes)::uuid[])
                ON CONFLICT DO NOTHING RETURNING node_id
                """).rows.map { row throws(KTDBError) in try row.decode(0, as: UUID.self) }
            touched.formUnion(linked)
        }
        let edges = try await w.query("SELECT key FROM write_edges WHERE fact_ids @> ARRAY[\(text)]::text[]").rows
            .map { row throws(KTDBError) in GraphKeys.id(forKey: try row.decode(0, as: String.self)).uuidString }
        if !edges.isEmpty {
            try await t.query("INSERT INTO edge_facts (edge_id, fact_id) SELECT e.id, \(id) FROM edges e WHERE e.id = ANY(\(edges)::uuid[]) ON CONFLICT DO NOTHING")
        }
        let dimensions = try await w.query("SELECT key FROM write_dimensions WHERE fact_ids @> ARRAY[\(text)]::text[]").rows
            .map { row throws(KTDBError) in GraphKeys.id(forKey: try row.decode(0, as: String.self)).uuidString }
        if !dimensions.isEmpty {
            try await t.query("INSERT INTO dimension_facts (dimension_id, fact_id) SELECT d.id, \(id) FROM dimensions d WHERE d.id = ANY(\(dimensions)::uuid[]) ON CONFLICT DO NOTHING")
        }
        return .applied
    }

    private func applyNode(_ key: String, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Result {
        let id = GraphKeys.id(forKey: key)
        guard let row = try await w.query("""
            SELECT concept, node_type, entity_subtype, parent_key, source_concept_key, definition, definition_source, attractor, filter_id,
                   max_content_tokens, stale_after, fact_ids, visibility, created_at, updated_at FROM write_nodes WHERE key = \(key)
            """).first else {
            for row in try await t.query("SELECT source_node_id, target_node_id FROM edges WHERE source_node_id = \(id) OR target_node_id = \(id)").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
            if let parent = try await t.query("DELETE FROM nodes WHERE id = \(id) RETURNING parent_id").first?.decode(0, as: UUID?.self) { touched.insert(parent) }
            touched.remove(id)
            return .applied
        }
        let parentKey = try row.decode("parent_key", as: String?.self), sourceKey = try row.decode("source_concept_key", as: String?.self)
        let parentID = parentKey.map(GraphKeys.id(forKey:)), sourceID = sourceKey.map(GraphKeys.id(forKey:))
        let existing = try await t.query("SELECT parent_id FROM nodes WHERE id = \(id)").first
        let old = try existing?.decode(0, as: UUID?.self)
        try await t.query("""
            INSERT INTO nodes (id, concept, node_type, entity_subtype, parent_id, source_concept_id, definition, definition_source, attractor,
                               filter_id, max_content_tokens, stale_after, visibility, created_at, updated_at)
            VALUES (\(id), \(try row.decode("concept", as: String.self)), \(try row.decode("node_type", as: String.self)),
                    \(try row.decode("entity_subtype", as: String?.self)),
                    (SELECT id FROM nodes WHERE id = \(parentID)), (SELECT id FROM nodes WHERE id = \(sourceID)),
                    \(try row.decode("definition", as: String?.self)), \(try row.decode("definition_source", as: String?.self)),
                    \(try row.decode("attractor", as: String?.self)), \(try row.decode("filter_id", as: String?.self)),
                    \(try row.decode("max_content_tokens", as: Int?.self)), \(try row.decode("stale_after", as: Int.self)),
                    \(try row.decode("visibility", as: String.self)), \(try row.decode("created_at", as: Date.self)), \(try row.decode("updated_at", as: Date.self)))
            ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, entity_subtype = EXCLUDED.entity_subtype,
                parent_id = EXCLUDED.parent_id, source_concept_id = EXCLUDED.source_concept_id, definition = EXCLUDED.definition,
                definition_source = EXCLUDED.definition_source, attractor = EXCLUDED.attractor, filter_id = EXCLUDED.filter_id,
                max_content_tokens = EXCLUDED.max_content_tokens, stale_after = EXCLUDED.stale_after, visibility = EXCLUDED.visibility,
                updated_at = EXCLUDED.updated_at
            """)
        touched.insert(id)
        if let old { touched.insert(old) }
        if let parentID { touched.insert(parentID) }
        // node_facts mirror fact_ids exactly: present facts, not rejected.
        let factIDs = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.uuidString)
        let rejected = try await w.query("SELECT fact_id FROM write_node_fact_rejections WHERE node_id = \(id)").rows
            .map { row throws(KTDBError) in try row.decode(0, as: UUID.self).uuidString }
        let wanted = factIDs.filter { !rejected.contains($0) }
        try await t.query("DELETE FROM node_facts WHERE node_id = \(id) AND NOT (fact_id = ANY(\(wanted)::uuid[]))")
        if !wanted.isEmpty {
            try await t.query("INSERT INTO node_facts (node_id, fact_id) SELECT \(id), f.id FROM facts f WHERE f.id = ANY(\(wanted)::uuid[]) ON CONFLICT DO NOTHING")
        }
        // Only a node new to graph-db can have children, perspectives, edges, dimensions or
        // counters waiting for it (a node already there had them applied when they arrived).
        guard existing == nil else { return .applied }
        // Children and perspectives that arrived before this node point at it now.
        let children = try await w.query("SELECT node_uuid::text FROM write_nodes WHERE parent_key = \(key)").rows.map { row throws(KTDBError) in try row.decode(0, as: String.self) }
        if !children.isEmpty {
            try await t.query("UPDATE nodes SET parent_id = \(id) WHERE id = ANY(\(children)::uuid[]) AND parent_id IS DISTINCT FROM \(id)")
        }
        let perspectives = try await w.query("SELECT node_uuid::text FROM write_nodes WHERE source_concept_key = \(key)").rows.map { row throws(KTDBError) in try row.decode(0, as: String.self) }
        if !perspectives.isEmpty {
            try await t.query("UPDATE nodes SET source_concept_id = \(id) WHERE id = ANY(\(perspectives)::uuid[]) AND source_concept_id IS DISTINCT FROM \(id)")
        }
        // Edges and dimensions of this node that graph-db lacks (for example after the node was deleted and re-created).
        let missingEdges = try await w.query("SELECT key FROM write_edges WHERE source_node_key = \(key) OR target_node_key = \(key)").rows
            .map { row throws(KTDBError) in try row.decode(0, as: String.self) }
        for edgeKey in missingEdges where try await t.query("SELECT 1 FROM edges WHERE id = \(GraphKeys.id(forKey: edgeKey))").first == nil {
            _ = try await applyEdge(edgeKey, w, t, touched: &touched)
        }
        let missingDimensions = try await w.query("SELECT key FROM write_dimensions WHERE node_key = \(key)").rows.map { row throws(KTDBError) in try row.decode(0, as: String.self) }
        for dimensionKey in missingDimensions where try await t.query("SELECT 1 FROM dimensions WHERE id = \(GraphKeys.id(forKey: dimensionKey))").first == nil {
            _ = try await applyDimension(dimensionKey, w, t, touched: &touched)
        }
        if try await w.query("SELECT 1 FROM write_node_counters WHERE node_key = \(key)").first != nil { _ = try await applyCounters(key, w, t) }
        return .applied
    }

    private func applyEdge(_ key: String, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Result {
        let id = GraphKeys.id(forKey: key)
        guard let row = try await w.query("""
            SELECT source_node_key, target_node_key, relationship_type, weight, justification, weight_source, fact_ids FROM write_edges WHERE key = \(key)
            """).first else {
            for row in try await t.query("DELETE FROM edges WHERE id = \(id) RETURNING source_node_id, target_node_id").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
            return .applied
        }
        let type = try row.decode("relationship_type", as: String.self)
        let (source, target) = GraphKeys.orderedNodeIDs(
            type, GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)), GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)))
        guard try await nodeExists(source, t), try await nodeExists(target, t) else { return .deferred("a node of the edge is not in graph-db yet") }
        try await t.query("""
            INSERT INTO edges (id, source_node_id, target_node_id, relationship_type, weight, justification, weight_source)
            VALUES (\(id), \(source), \(target), \(type), \(try row.decode("weight", as: Double.self)), \(try row.decode("justification", as: String?.self)),
                    \(try row.decode("weight_source", as: String?.self)))
            ON CONFLICT (id) DO UPDATE SET weight = EXCLUDED.weight, justification = EXCLUDED.justification, weight_source = EXCLUDED.weight_source, updated_at = now()
            """)
        let facts = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.uuidString)
        try await t.query("DELETE FROM edge_facts WHERE edge_id = \(id) AND NOT (fact_id = ANY(\(facts)::uuid[]))")
        if !facts.isEmpty {
            try await t.query("INSERT INTO edge_facts (edge_id, fact_id) SELECT \(id), f.id FROM facts f WHERE f.id = ANY(\(facts)::uuid[]) ON CONFLICT DO NOTHING")
        }
        touched.formUnion([source, target])
        return .applied
    }

    private func applyDimension(_ key: String, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Result {
        let id = GraphKeys.id(forKey: key)
        guard let row = try await w.query("""
            SELECT node_key, model_id, content, confidence, suggested_concepts, batch_index, fact_count, is_definitive, fact_ids, created_at
            FROM write_dimensions WHERE key = \(key)
            """).first else {
            if let node = try await t.query("DELETE FROM dimensions WHERE id = \(id) RETURNING node_id").first?.decode(0, as: UUID.self) { touched.insert(node) }
            return .applied
        }
        let node = GraphKeys.id(forKey: try row.decode("node_key", as: String.self))
        guard try await nodeExists(node, t) else { return .deferred("the dimension's node is not in graph-db yet") }
        try await t.query("""
            INSERT INTO dimensions (id, node_id, model_id, content, confidence, suggested_concepts, batch_index, fact_count, is_definitive, generated_at)
            VALUES (\(id), \(node), \(try row.decode("model_id", as: String.self)), \(try row.decode("content", as: String.self)),
                    \(try row.decode("confidence", as: Double?.self)), \(try row.decode("suggested_concepts", as: [String]?.self)),
                    \(try row.decode("batch_index", as: Int.self)), \(try row.decode("fact_count", as: Int.self)),
                    \(try row.decode("is_definitive", as: Bool.self)), \(try row.decode("created_at", as: Date.self)))
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, confidence = EXCLUDED.confidence, suggested_concepts = EXCLUDED.suggested_concepts,
                fact_count = EXCLUDED.fact_count, is_definitive = EXCLUDED.is_definitive
            """)
        let facts = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.uuidString)
        try await t.query("DELETE FROM dimension_facts WHERE dimension_id = \(id) AND NOT (fact_id = ANY(\(facts)::uuid[]))")
        if !facts.isEmpty {
            try await t.query("INSERT INTO dimension_facts (dimension_id, fact_id) SELECT \(id), f.id FROM facts f WHERE f.id = ANY(\(facts)::uuid[]) ON CONFLICT DO NOTHING")
        }
        touched.insert(node)
        return .applied
    }

    private func applyCounters(_ key: String, _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Result {
        let node = GraphKeys.id(forKey: key)
        guard let row = try await w.query("SELECT access_count, update_count, seed_fact_count FROM write_node_counters WHERE node_key = \(key)").first else {
            try await t.query("DELETE FROM node_counters WHERE node_id = \(node)")
            return .applied
        }
        guard try await nodeExists(node, t) else { return .deferred("the counters' node is not in graph-db yet") }
        let access = try row.decode("access_count", as: Int.self), update = try row.decode("update_count", as: Int.self)
        try await t.query("""
            INSERT INTO node_counters (node_id, access_count, update_count, seed_fact_count) VALUES (\(node), \(access), \(update), \(try row.decode("seed_fact_count", as: Int.self)))
            ON CONFLICT (node_id) DO UPDATE SET access_count = EXCLUDED.access_count, update_count = EXCLUDED.update_count, seed_fact_count = EXCLUDED.seed_fact_count
            """)
        try await t.query("UPDATE nodes SET access_count = \(access), update_count = \(update) WHERE id = \(node)")
        return .applied
    }
}
