import Foundation
import KTDB

/// The nodes' part of the set-based sync: reading a batch of write-db node rows (with their
/// facts, rejections and what waits for new nodes) and applying it in graph-db in one statement.
extension SyncEngine {
    // MARK: Nodes

    /// The node columns copied as they are, in `nodes`' order (read as text in write-db, bound as
    /// one array per column and expanded by `unnest` in graph-db).
    static let nodeColumns: [(name: String, type: String)] = [
        ("concept", "text"), ("node_type", "text"), ("entity_subtype", "text"), ("definition", "text"), ("definition_source", "text"),
        ("attractor", "text"), ("filter_id", "text"), ("max_content_tokens", "int"), ("stale_after", "int"), ("visibility", "text"),
        ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
    ]

    /// A batch of write-db node rows, as one array literal per column for graph-db's `unnest`.
    struct NodeRows: Sendable {
        /// The keys asked for; those without a row were deleted.
        var keys: [String]
        /// The keys found, in row order, their node ids and `updated_at`.
        var presentKeys: [String] = [], ids: [UUID] = [], updatedAt: [Date] = []
        /// The keys found whose node was created after the table's watermark: probably new to
        /// graph-db.
        var createdSinceWatermark: [String] = []
        /// What waits in write-db for the nodes of ``createdSinceWatermark``, read with the rows
        /// (so applying the batch does not wait for write-db).
        var predictedDependents = Dependents()
        /// Per row: parent id, perspective source id, then ``nodeColumns`` as text.
        var parents: [String?] = [], sources: [String?] = []
        var values = Array(repeating: [String?](), count: SyncEngine.nodeColumns.count)
        /// (node id, fact id) of the node_facts and node_fact_rejections wanted.
        var links: (nodes: [String], facts: [String]) = ([], []), rejections: (nodes: [String], facts: [String]) = ([], [])

        /// The arrays: node ids, parent ids, perspective source ids, then ``nodeColumns``.
        var columns: [PostgresArray] { [PostgresArray(ids)] + ([parents, sources] + values).map(PostgresArray.init(text:)) }
    }

    /// Which write-db node rows to read.
    enum NodeSelection {
        /// These keys' rows (a key without one was deleted).
        case keys([String])
        /// The first `limit` rows changed after a moment, in `updated_at` order (a walk of its index).
        case changedAfter(Date, limit: Int)
        /// The rows changed at exactly a moment, but for the keys already read.
        case changedAt(Date, excluding: [String])
    }

    /// Reads `keys`' rows (a key without one was deleted).
    func loadNodes(_ keys: [String], _ w: PostgresTransaction, watermark: Date? = nil) async throws -> NodeRows {
        var rows = NodeRows(keys: keys)
        try await loadNodes(.keys(keys), into: &rows, w, watermark: watermark)
        return rows
    }

    /// Reads the selected rows into `rows`: each row's columns as text and its facts in
    /// graph-db's shape (without rejected facts); Swift adds the ids of node, parent and
    /// perspective source, derived from their keys (whether those nodes exist is graph-db's
    /// question, answered when applying). With `watermark`, what waits for the rows' nodes
    /// created since then is read in the same statement.
    func loadNodes(_ selection: NodeSelection, into rows: inout NodeRows, _ w: PostgresTransaction, watermark: Date? = nil) async throws {
        let columns = Self.nodeColumns
        var query: PostgresQuery = """
            SELECT n.key, n.parent_key, n.source_concept_key, coalesce(n.created_at > \(watermark)::timestamptz, false),
                ARRAY(SELECT DISTINCT f.fact::uuid FROM unnest(n.fact_ids) AS f(fact) WHERE NOT EXISTS (
                    SELECT 1 FROM \(writeDB.nodeFactRejections) r WHERE r.node_id = n.node_uuid AND r.fact_id = f.fact::uuid)),
                ARRAY(SELECT r.fact_id FROM \(writeDB.nodeFactRejections) r WHERE r.node_id = n.node_uuid),
                n.updated_at, \(unsafeRaw: columns.map { "n." + $0.name }.joined(separator: ", ")),
                CASE WHEN n.created_at > \(watermark)::timestamptz THEN ARRAY(\(unsafeRaw: dependentsOfNode)) END

            """
        switch selection {
        case .keys(let keys):
            query.append("FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.nodes) WHERE key = k.key OFFSET 0) n")
        case .changedAfter(let after, let limit):
            query.append("FROM (SELECT * FROM \(writeDB.nodes) WHERE updated_at > \(after) ORDER BY updated_at LIMIT \(limit)) n ORDER BY n.updated_at")
        case .changedAt(let at, let excluding):
            query.append("FROM \(writeDB.nodes) n WHERE n.updated_at = \(at) AND n.key <> ALL(\(excluding)::text[])")
        }
        for row in try await w.query(query).rows {
            let key = try row.decode(0, as: String.self), nodeID = GraphKeys.id(forKey: key), id = nodeID.postgresText
            rows.presentKeys.append(key)
            rows.ids.append(nodeID)
            if try row.decode(3, as: Bool.self) { rows.createdSinceWatermark.append(key) }
            rows.parents.append(try row.decode(1, as: String?.self).map { GraphKeys.id(forKey: $0).postgresText })
            rows.sources.append(try row.decode(2, as: String?.self).map { GraphKeys.id(forKey: $0).postgresText })
            for fact in try row.decode(4, as: [String].self) { rows.links.nodes.append(id); rows.links.facts.append(fact) }
            for fact in try row.decode(5, as: [String].self) { rows.rejections.nodes.append(id); rows.rejections.facts.append(fact) }
            rows.updatedAt.append(try row.decode(6, as: Date.self))
            for column in columns.indices { rows.values[column].append(try row.decode(7 + column, as: String?.self)) }
            for entry in try row.decode(7 + columns.count, as: [String]?.self) ?? [] {
                guard let colon = entry.firstIndex(of: ":"), let kind = Dependents.Kind(rawValue: String(entry[..<colon])) else {
                    throw KTDBError(code: .decoding, message: "unknown dependent kind")
                }
                rows.predictedDependents.entries.append(.init(kind: kind, value: String(entry[entry.index(after: colon)...]), nodeKey: key))
            }
        }
        if case .keys = selection {} else { rows.keys = rows.presentKeys }
    }

    /// What may wait in write-db for node `n` (new to graph-db), as `kind:value` texts: children
    /// and perspectives (by node id), edges, dimensions, counters, reports and versions (by key
    /// or id).
    var dependentsOfNode: String {
        """
        SELECT 'child:' || d.node_uuid::text FROM \(writeDB.nodes) d WHERE d.parent_key = n.key
        UNION ALL SELECT 'perspective:' || d.node_uuid::text FROM \(writeDB.nodes) d WHERE d.source_concept_key = n.key
        UNION ALL SELECT 'edge:' || d.key FROM \(writeDB.edges) d WHERE d.source_node_key = n.key OR d.target_node_key = n.key
        UNION ALL SELECT 'dimension:' || d.key FROM \(writeDB.dimensions) d WHERE d.node_key = n.key
        UNION ALL SELECT 'counters:' || d.node_key FROM \(writeDB.nodeCounters) d WHERE d.node_key = n.key
        UNION ALL SELECT 'report:' || d.node_key FROM \(writeDB.convergenceReports) d WHERE d.node_key = n.key
        UNION ALL SELECT 'version:' || d.id::text FROM \(writeDB.nodeVersions) d WHERE d.node_key = n.key
        """
    }

    func applyNodes(_ rows: NodeRows, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        let present = Set(rows.presentKeys)
        let deleted = rows.keys.filter { !present.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty {
            for row in try await t.query(
                "SELECT source_node_id, target_node_id FROM \(graphDB.edges) WHERE source_node_id IN (SELECT unnest(\(deleted)::uuid[])) OR target_node_id IN (SELECT unnest(\(deleted)::uuid[]))"
            ).rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
            touched.formUnion(try await t.query("DELETE FROM \(graphDB.nodes) WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING parent_id").optionalUUIDs(0))
            touched.subtract(deleted.compactMap(UUID.init(uuidString:)))
        }
        guard !rows.presentKeys.isEmpty else { return Self.allApplied(rows.keys) }
        // Only a node new to graph-db can have children, perspectives, edges, dimensions,
        // counters, reports or versions waiting for it (a node already there had them applied
        // when they arrived). For the nodes created since the watermark (probably new), write-db
        // looked them up with the rows; the upsert tells which nodes are new.
        let result = try await t.query(upsertNodes(rows))
        var existing: Set<UUID> = []
        for row in result.rows {
            let id = try row.decode(1, as: UUID.self)
            if try row.decode(0, as: Bool.self) {
                existing.insert(id)
                if let old = try row.decode(2, as: UUID?.self) { touched.insert(old) }
            } else {
                touched.insert(id)
            }
        }
        var (waiting, late) = SyncPlan.newNodeDependents(
            keys: rows.presentKeys, ids: rows.ids, existing: existing, predicted: rows.predictedDependents, createdSinceWatermark: rows.createdSinceWatermark)
        if !late.isEmpty { waiting.merge(try await loadDependents(ofNewNodes: late, w)) }
        try await applyDependents(waiting, w, t, touched: &touched)
        return Self.allApplied(rows.keys)
    }

    /// One statement: upsert the nodes and mirror node_facts and node_fact_rejections exactly
    /// (present facts only). A parent or perspective source is set when it is in graph-db or in
    /// this batch (foreign keys are checked at the end of the statement). It reports the nodes
    /// that existed before (with their old parent), every upserted node's parent, and the nodes
    /// whose facts changed: the nodes whose counters need a refresh.
    func upsertNodes(_ rows: NodeRows) -> PostgresQuery {
        let columns = Self.nodeColumns, arrays = rows.columns
        var query: PostgresQuery = """
            WITH b AS (SELECT * FROM unnest(\(arrays[0])::uuid[], \(arrays[1])::uuid[], \(arrays[2])::uuid[]
            """
        for (column, values) in zip(columns, arrays.dropFirst(3)) { query.append(", \(values)::\(unsafeRaw: column.type)[]") }
        query.append(
            """
            ) AS b(id, parent_id, source_concept_id, \(unsafeRaw: columns.map(\.name).joined(separator: ", ")))),
                links AS (SELECT * FROM unnest(\(rows.links.nodes)::uuid[], \(rows.links.facts)::uuid[]) AS l(node_id, fact_id)),
                rejections AS (SELECT * FROM unnest(\(rows.rejections.nodes)::uuid[], \(rows.rejections.facts)::uuid[]) AS r(node_id, fact_id)),
                old AS (SELECT n.id, n.parent_id FROM b CROSS JOIN LATERAL (SELECT id, parent_id FROM \(graphDB.nodes) WHERE id = b.id OFFSET 0) n),
                up AS (
                    INSERT INTO \(graphDB.nodes) (id, concept, node_type, entity_subtype, parent_id, source_concept_id, definition, definition_source, attractor,
                                       filter_id, max_content_tokens, stale_after, visibility, created_at, updated_at)
                    SELECT b.id, b.concept, b.node_type, b.entity_subtype,
                           CASE WHEN b.parent_id IN (SELECT id FROM b) OR p.id IS NOT NULL THEN b.parent_id END,
                           CASE WHEN b.source_concept_id IN (SELECT id FROM b) OR s.id IS NOT NULL THEN b.source_concept_id END,
                           b.definition, b.definition_source, b.attractor, b.filter_id, b.max_content_tokens, b.stale_after, b.visibility,
                           b.created_at, b.updated_at
                    FROM b LEFT JOIN LATERAL (SELECT id FROM \(graphDB.nodes) WHERE id = b.parent_id OFFSET 0) p ON true
                           LEFT JOIN LATERAL (SELECT id FROM \(graphDB.nodes) WHERE id = b.source_concept_id OFFSET 0) s ON true
                    ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, entity_subtype = EXCLUDED.entity_subtype,
                        parent_id = EXCLUDED.parent_id, source_concept_id = EXCLUDED.source_concept_id, definition = EXCLUDED.definition,
                        definition_source = EXCLUDED.definition_source, attractor = EXCLUDED.attractor, filter_id = EXCLUDED.filter_id,
                        max_content_tokens = EXCLUDED.max_content_tokens, stale_after = EXCLUDED.stale_after, visibility = EXCLUDED.visibility,
                        updated_at = EXCLUDED.updated_at
                    RETURNING parent_id),
                unlinked AS (
                    DELETE FROM \(graphDB.nodeFacts) j USING old
                    WHERE j.node_id = old.id AND NOT EXISTS (SELECT 1 FROM links l WHERE l.node_id = j.node_id AND l.fact_id = j.fact_id) RETURNING j.node_id),
                linked AS (
                    INSERT INTO \(graphDB.nodeFacts) (node_id, fact_id)
                    SELECT l.node_id, f.id FROM links l CROSS JOIN LATERAL (SELECT id FROM \(graphDB.facts) WHERE id = l.fact_id OFFSET 0) f
                    ON CONFLICT DO NOTHING RETURNING node_id),
                unrejected AS (
                    DELETE FROM \(graphDB.nodeFactRejections) j USING old
                    WHERE j.node_id = old.id AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.node_id = j.node_id AND r.fact_id = j.fact_id)),
                rejected AS (
                    INSERT INTO \(graphDB.nodeFactRejections) (id, node_id, fact_id)
                    SELECT gen_random_uuid(), r.node_id, f.id FROM rejections r CROSS JOIN LATERAL (SELECT id FROM \(graphDB.facts) WHERE id = r.fact_id OFFSET 0) f
                    ON CONFLICT DO NOTHING)
            SELECT true, id, parent_id FROM old
            UNION ALL SELECT false, parent_id, NULL FROM up WHERE parent_id IS NOT NULL
            UNION ALL SELECT false, node_id, NULL FROM unlinked
            UNION ALL SELECT false, node_id, NULL FROM linked
            """)
        return query
    }

    /// What may have waited in write-db for nodes new to graph-db: children and perspectives
    /// (by node id), edges, dimensions, counters, reports and versions (by key or id), each with
    /// the key of the new node it waited for.
    struct Dependents: Sendable {
        enum Kind: String, Sendable { case child, perspective, edge, dimension, counters, report, version }
        struct Entry: Sendable { var kind: Kind, value: String, nodeKey: String }
        var entries: [Entry] = []

        func only(ofNodes keys: Set<String>) -> Dependents { Dependents(entries: entries.filter { keys.contains($0.nodeKey) }) }
        mutating func merge(_ other: Dependents) { entries += other.entries }
        /// The distinct values of one kind (an edge between two new nodes is found for both).
        func values(_ kind: Kind) -> [String] {
            var seen: Set<String> = []
            return entries.filter { $0.kind == kind && seen.insert($0.value).inserted }.map(\.value)
        }
        /// (node id, id of the new node it points at) for children or perspectives.
        func pointers(_ kind: Kind) -> [(String, String)] {
            entries.filter { $0.kind == kind }.map { ($0.value, GraphKeys.id(forKey: $0.nodeKey).postgresText) }
        }
    }

    /// Everything that may have waited for these nodes, in one write-db query.
    func loadDependents(ofNewNodes newKeys: [String], _ w: PostgresTransaction) async throws -> Dependents {
        try await Dependents(
            entries: w.query(
                """
                WITH k AS MATERIALIZED (SELECT unnest(\(newKeys)::text[]) AS key)
                SELECT 'child', d.node_uuid::text, k.key FROM k CROSS JOIN LATERAL (SELECT node_uuid FROM \(writeDB.nodes) WHERE parent_key = k.key OFFSET 0) d
                UNION ALL SELECT 'perspective', d.node_uuid::text, k.key FROM k
                    CROSS JOIN LATERAL (SELECT node_uuid FROM \(writeDB.nodes) WHERE source_concept_key = k.key OFFSET 0) d
                UNION ALL SELECT 'edge', d.key, k.key FROM k
                    CROSS JOIN LATERAL (SELECT key FROM \(writeDB.edges) WHERE source_node_key = k.key OR target_node_key = k.key OFFSET 0) d
                UNION ALL SELECT 'dimension', d.key, k.key FROM k CROSS JOIN LATERAL (SELECT key FROM \(writeDB.dimensions) WHERE node_key = k.key OFFSET 0) d
                UNION ALL SELECT 'counters', d.node_key, k.key FROM k CROSS JOIN LATERAL (SELECT node_key FROM \(writeDB.nodeCounters) WHERE node_key = k.key OFFSET 0) d
                UNION ALL SELECT 'report', d.node_key, k.key FROM k
                    CROSS JOIN LATERAL (SELECT node_key FROM \(writeDB.convergenceReports) WHERE node_key = k.key OFFSET 0) d
                UNION ALL SELECT 'version', d.id::text, k.key FROM k CROSS JOIN LATERAL (SELECT id FROM \(writeDB.nodeVersions) WHERE node_key = k.key OFFSET 0) d
                """
            ).rows.map { row throws(KTDBError) in
                guard let kind = Dependents.Kind(rawValue: try row.decode(0, as: String.self)) else { throw KTDBError(code: .decoding, message: "unknown dependent kind") }
                return Dependents.Entry(kind: kind, value: try row.decode(1, as: String.self), nodeKey: try row.decode(2, as: String.self))
            })
    }

    /// Applies what waited for new nodes: children and perspectives that arrived before their
    /// node point at it now; edges, dimensions, counters, reports and versions graph-db lacks
    /// are applied (for example after a node was deleted and re-created).
    func applyDependents(_ waiting: Dependents, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws {
        for (kind, column) in [(Dependents.Kind.child, "parent_id"), (.perspective, "source_concept_id")] {
            let pairs = waiting.pointers(kind)
            guard !pairs.isEmpty else { continue }
            let changed = try await t.query(
                """
                UPDATE \(graphDB.nodes) n SET \(unsafeRaw: column) = u.p FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS u(c, p)
                WHERE n.id = u.c AND n.\(unsafeRaw: column) IS DISTINCT FROM u.p RETURNING u.p
                """
            ).uuids(0)
            if column == "parent_id" { touched.formUnion(changed) }
        }
        let edges = try await missing(waiting.values(.edge), from: .edges, t)
        if !edges.isEmpty { _ = try await applyEdges(edges, w, t, touched: &touched) }
        let dimensions = try await missing(waiting.values(.dimension), from: .dimensions, t)
        if !dimensions.isEmpty { _ = try await applyDimensions(dimensions, w, t, touched: &touched) }
        let counterKeys = waiting.values(.counters), reportKeys = waiting.values(.report), versionIDs = waiting.values(.version)
        if !counterKeys.isEmpty { _ = try await applyCounterRows(counterKeys, w, t) }
        if !reportKeys.isEmpty { _ = try await applyConvergenceReports(reportKeys, w, t) }
        if !versionIDs.isEmpty { _ = try await applyNodeVersions(versionIDs, w, t) }
    }
}

extension TableSyncer {
    /// `write_nodes` → `nodes`, `node_facts` and `node_fact_rejections`.
    static let nodes = TableSyncer(table: .nodes, keyColumn: "key") { engine, keys, w, t, touched in
        try await engine.applyNodes(try await engine.loadNodes(keys, w), w, t, touched: &touched)
    }
}
