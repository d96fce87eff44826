import Foundation
import KTDB

/// The set-based path of the sync: one table's keys applied with a handful of statements
/// (nodes travel to graph-db as one array per column, expanded by `unnest`; the other tables'
/// rows as one `jsonb` parameter, expanded by `jsonb_to_recordset`), instead of several round
/// trips per row. It gives the same result as applying each key alone
/// (``SyncEngine`` falls back to that path, row by row in savepoints, when a batch fails).
extension SyncEngine {
    typealias Outcomes = [String: Result]

    /// Applies `keys` of `table` in graph-db transaction `t`, reading write-db through `w`.
    /// Rows already read from write-db with the batch are used when they are `keys`' rows.
    func applyBatch(
        _ table: String, _ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, prefetched: Prefetched? = nil, touched: inout Set<UUID>
    ) async throws -> Outcomes {
        switch (table, prefetched) {
        case ("write_nodes", .nodes(let rows)) where rows.keys == keys: return try await applyNodes(rows, w, t, touched: &touched)
        default: break
        }
        return switch table {
        case "write_facts": try await applyFacts(keys, w, t, touched: &touched)
        case "write_nodes": try await applyNodes(try await loadNodes(keys, w), w, t, touched: &touched)
        case "write_edges": try await applyEdges(keys, w, t, touched: &touched)
        case "write_dimensions": try await applyDimensions(keys, w, t, touched: &touched)
        case "write_node_counters": try await applyCounterRows(keys, w, t)
        case "write_raw_sources": try await applyRawSources(keys, w, t)
        case "write_fact_sources": try await applyFactSources(keys, w, t)
        case "write_prohibited_chunks": try await applyProhibitedChunks(keys, w, t)
        case "write_convergence_reports": try await applyConvergenceReports(keys, w, t)
        case "write_node_versions": try await applyNodeVersions(keys, w, t)
        case "write_llm_usage": try await applyLLMUsage(keys, w, t)
        default: Dictionary(uniqueKeysWithValues: keys.map { ($0, Result.failed("unknown table \(table)")) })
        }
    }

    /// A batch's write-db rows, read with the batch: the sync reads the next batch of a table
    /// while graph-db applies the current one.
    enum Prefetched: Sendable {
        case nodes(NodeRows)
    }

    // MARK: Facts

    private struct FactRow: Encodable {
        var id: String, content: String, factType: String, createdAt: String
    }

    private func applyFacts(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var ready: [FactRow] = [], pending: Set<String> = [], present: Set<String> = []
        for row in try await w.query("""
            SELECT f.id, f.content, f.fact_type, f.dedup_status, f.created_at FROM unnest(\(ids)::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT * FROM write_facts WHERE id = k.id OFFSET 0) f
            """).rows {
            let id = try row.decode("id", as: UUID.self).postgresText
            present.insert(id)
            if try row.decode("dedup_status", as: String.self) == "ready" {
                ready.append(FactRow(id: id, content: try row.decode("content", as: String.self), factType: try row.decode("fact_type", as: String.self),
                                     createdAt: try row.decode("created_at", as: Date.self).postgresText))
            } else {
                pending.insert(id)
            }
        }
        let missing = ids.filter { !present.contains($0) }
        if !missing.isEmpty {
            touched.formUnion(try await t.query("DELETE FROM node_facts WHERE fact_id IN (SELECT unnest(\(missing)::uuid[])) RETURNING node_id").uuids(0))
            try await t.query("DELETE FROM facts WHERE id IN (SELECT unnest(\(missing)::uuid[]))")
        }
        if !ready.isEmpty {
            try await t.query("""
                INSERT INTO facts (id, content, fact_type, created_at)
                SELECT b.id, b.content, b.fact_type, b.created_at FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, content text, fact_type text, created_at timestamptz)
                ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type
                """)
            // Junctions that were waiting for these facts (a node, edge or dimension that arrived first).
            let readyIDs = ready.map(\.id)
            let nodePairs = try await w.query("""
                SELECT n.node_uuid, f.fact FROM write_nodes n CROSS JOIN LATERAL unnest(n.fact_ids) AS f(fact)
                WHERE n.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                  AND NOT EXISTS (SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid AND r.fact_id::text = f.fact)
                """).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: String.self)) }
            if !nodePairs.isEmpty {
                touched.formUnion(try await t.query("""
                    INSERT INTO node_facts (node_id, fact_id) SELECT p.n, p.f FROM unnest(\(nodePairs.map(\.0))::uuid[], \(nodePairs.map(\.1))::uuid[]) AS p(n, f)
                    WHERE EXISTS (SELECT 1 FROM nodes WHERE id = p.n) ON CONFLICT DO NOTHING RETURNING node_id
                    """).uuids(0))
            }
            // Rejections that were waiting for these facts.
            let rejections = try await w.query("""
                SELECT node_id::text, fact_id::text FROM write_node_fact_rejections WHERE fact_id = ANY(\(readyIDs)::uuid[])
                """).rows.map { row throws(KTDBError) in (try row.decode(0, as: String.self), try row.decode(1, as: String.self)) }
            if !rejections.isEmpty {
                try await t.query("""
                    INSERT INTO node_fact_rejections (id, node_id, fact_id)
                    SELECT gen_random_uuid(), r.n, r.f FROM unnest(\(rejections.map(\.0))::uuid[], \(rejections.map(\.1))::uuid[]) AS r(n, f)
                    WHERE EXISTS (SELECT 1 FROM nodes WHERE id = r.n) ON CONFLICT DO NOTHING
                    """)
            }
            for (source, owners, junction, owner) in [("write_edges", "edges", "edge_facts", "edge"), ("write_dimensions", "dimensions", "dimension_facts", "dimension")] {
                let pairs = try await w.query("""
                    SELECT s.key, f.fact FROM \(unsafeRaw: source) s CROSS JOIN LATERAL unnest(s.fact_ids) AS f(fact)
                    WHERE s.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                    """).rows.map { row throws(KTDBError) in (GraphKeys.id(forKey: try row.decode(0, as: String.self)).postgresText, try row.decode(1, as: String.self)) }
                guard !pairs.isEmpty else { continue }
                try await t.query("""
                    INSERT INTO \(unsafeRaw: junction) (\(unsafeRaw: owner)_id, fact_id) SELECT p.o, p.f FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS p(o, f)
                    WHERE EXISTS (SELECT 1 FROM \(unsafeRaw: owners) WHERE id = p.o) ON CONFLICT DO NOTHING
                    """)
            }
        }
        for id in pending { outcomes[keyOfID[id]!] = .deferred("fact is not ready (dedup pending)") }
        return outcomes
    }

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
                    SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid AND r.fact_id = f.fact::uuid)),
                ARRAY(SELECT r.fact_id FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid),
                n.updated_at, \(unsafeRaw: columns.map { "n." + $0.name }.joined(separator: ", ")),
                CASE WHEN n.created_at > \(watermark)::timestamptz THEN ARRAY(\(unsafeRaw: Self.dependentsOfNode)) END
            
            """
        switch selection {
        case .keys(let keys):
            query.append("FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_nodes WHERE key = k.key OFFSET 0) n")
        case .changedAfter(let after, let limit):
            query.append("FROM (SELECT * FROM write_nodes WHERE updated_at > \(after) ORDER BY updated_at LIMIT \(limit)) n ORDER BY n.updated_at")
        case .changedAt(let at, let excluding):
            query.append("FROM write_nodes n WHERE n.updated_at = \(at) AND n.key <> ALL(\(excluding)::text[])")
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
    private static let dependentsOfNode = """
        SELECT 'child:' || d.node_uuid::text FROM write_nodes d WHERE d.parent_key = n.key
        UNION ALL SELECT 'perspective:' || d.node_uuid::text FROM write_nodes d WHERE d.source_concept_key = n.key
        UNION ALL SELECT 'edge:' || d.key FROM write_edges d WHERE d.source_node_key = n.key OR d.target_node_key = n.key
        UNION ALL SELECT 'dimension:' || d.key FROM write_dimensions d WHERE d.node_key = n.key
        UNION ALL SELECT 'counters:' || d.node_key FROM write_node_counters d WHERE d.node_key = n.key
        UNION ALL SELECT 'report:' || d.node_key FROM write_convergence_reports d WHERE d.node_key = n.key
        UNION ALL SELECT 'version:' || d.id::text FROM write_node_versions d WHERE d.node_key = n.key
        """

    private func applyNodes(_ rows: NodeRows, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        let present = Set(rows.presentKeys)
        let deleted = rows.keys.filter { !present.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty {
            for row in try await t.query("SELECT source_node_id, target_node_id FROM edges WHERE source_node_id IN (SELECT unnest(\(deleted)::uuid[])) OR target_node_id IN (SELECT unnest(\(deleted)::uuid[]))").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
            touched.formUnion(try await t.query("DELETE FROM nodes WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING parent_id").optionalUUIDs(0))
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
        let newKeys = zip(rows.presentKeys, rows.ids).filter { !existing.contains($0.1) }.map(\.0)
        var waiting = rows.predictedDependents.only(ofNodes: Set(newKeys))
        let predictedSet = Set(rows.createdSinceWatermark)
        let late = newKeys.filter { !predictedSet.contains($0) }
        if !late.isEmpty { waiting.merge(try await loadDependents(ofNewNodes: late, w)) }
        try await applyDependents(waiting, w, t, touched: &touched)
        return Self.allApplied(rows.keys)
    }

    /// One statement: upsert the nodes and mirror node_facts and node_fact_rejections exactly
    /// (present facts only). A parent or perspective source is set when it is in graph-db or in
    /// this batch (foreign keys are checked at the end of the statement). It reports the nodes
    /// that existed before (with their old parent), every upserted node's parent, and the nodes
    /// whose facts changed: the nodes whose counters need a refresh.
    private func upsertNodes(_ rows: NodeRows) -> PostgresQuery {
        let columns = Self.nodeColumns, arrays = rows.columns
        var query: PostgresQuery = """
            WITH b AS (SELECT * FROM unnest(\(arrays[0])::uuid[], \(arrays[1])::uuid[], \(arrays[2])::uuid[]
            """
        for (column, values) in zip(columns, arrays.dropFirst(3)) { query.append(", \(values)::\(unsafeRaw: column.type)[]") }
        query.append("""
            ) AS b(id, parent_id, source_concept_id, \(unsafeRaw: columns.map(\.name).joined(separator: ", ")))),
                links AS (SELECT * FROM unnest(\(rows.links.nodes)::uuid[], \(rows.links.facts)::uuid[]) AS l(node_id, fact_id)),
                rejections AS (SELECT * FROM unnest(\(rows.rejections.nodes)::uuid[], \(rows.rejections.facts)::uuid[]) AS r(node_id, fact_id)),
                old AS (SELECT n.id, n.parent_id FROM b CROSS JOIN LATERAL (SELECT id, parent_id FROM nodes WHERE id = b.id OFFSET 0) n),
                up AS (
                    INSERT INTO nodes (id, concept, node_type, entity_subtype, parent_id, source_concept_id, definition, definition_source, attractor,
                                       filter_id, max_content_tokens, stale_after, visibility, created_at, updated_at)
                    SELECT b.id, b.concept, b.node_type, b.entity_subtype,
                           CASE WHEN b.parent_id IN (SELECT id FROM b) OR p.id IS NOT NULL THEN b.parent_id END,
                           CASE WHEN b.source_concept_id IN (SELECT id FROM b) OR s.id IS NOT NULL THEN b.source_concept_id END,
                           b.definition, b.definition_source, b.attractor, b.filter_id, b.max_content_tokens, b.stale_after, b.visibility,
                           b.created_at, b.updated_at
                    FROM b LEFT JOIN LATERAL (SELECT id FROM nodes WHERE id = b.parent_id OFFSET 0) p ON true
                           LEFT JOIN LATERAL (SELECT id FROM nodes WHERE id = b.source_concept_id OFFSET 0) s ON true
                    ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, entity_subtype = EXCLUDED.entity_subtype,
                        parent_id = EXCLUDED.parent_id, source_concept_id = EXCLUDED.source_concept_id, definition = EXCLUDED.definition,
                        definition_source = EXCLUDED.definition_source, attractor = EXCLUDED.attractor, filter_id = EXCLUDED.filter_id,
                        max_content_tokens = EXCLUDED.max_content_tokens, stale_after = EXCLUDED.stale_after, visibility = EXCLUDED.visibility,
                        updated_at = EXCLUDED.updated_at
                    RETURNING parent_id),
                unlinked AS (
                    DELETE FROM node_facts j USING old
                    WHERE j.node_id = old.id AND NOT EXISTS (SELECT 1 FROM links l WHERE l.node_id = j.node_id AND l.fact_id = j.fact_id) RETURNING j.node_id),
                linked AS (
                    INSERT INTO node_facts (node_id, fact_id)
                    SELECT l.node_id, f.id FROM links l CROSS JOIN LATERAL (SELECT id FROM facts WHERE id = l.fact_id OFFSET 0) f
                    ON CONFLICT DO NOTHING RETURNING node_id),
                unrejected AS (
                    DELETE FROM node_fact_rejections j USING old
                    WHERE j.node_id = old.id AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.node_id = j.node_id AND r.fact_id = j.fact_id)),
                rejected AS (
                    INSERT INTO node_fact_rejections (id, node_id, fact_id)
                    SELECT gen_random_uuid(), r.node_id, f.id FROM rejections r CROSS JOIN LATERAL (SELECT id FROM facts WHERE id = r.fact_id OFFSET 0) f
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
    private func loadDependents(ofNewNodes newKeys: [String], _ w: PostgresTransaction) async throws -> Dependents {
        try await Dependents(entries: w.query("""
            WITH k AS MATERIALIZED (SELECT unnest(\(newKeys)::text[]) AS key)
            SELECT 'child', d.node_uuid::text, k.key FROM k CROSS JOIN LATERAL (SELECT node_uuid FROM write_nodes WHERE parent_key = k.key OFFSET 0) d
            UNION ALL SELECT 'perspective', d.node_uuid::text, k.key FROM k
                CROSS JOIN LATERAL (SELECT node_uuid FROM write_nodes WHERE source_concept_key = k.key OFFSET 0) d
            UNION ALL SELECT 'edge', d.key, k.key FROM k
                CROSS JOIN LATERAL (SELECT key FROM write_edges WHERE source_node_key = k.key OR target_node_key = k.key OFFSET 0) d
            UNION ALL SELECT 'dimension', d.key, k.key FROM k CROSS JOIN LATERAL (SELECT key FROM write_dimensions WHERE node_key = k.key OFFSET 0) d
            UNION ALL SELECT 'counters', d.node_key, k.key FROM k CROSS JOIN LATERAL (SELECT node_key FROM write_node_counters WHERE node_key = k.key OFFSET 0) d
            UNION ALL SELECT 'report', d.node_key, k.key FROM k
                CROSS JOIN LATERAL (SELECT node_key FROM write_convergence_reports WHERE node_key = k.key OFFSET 0) d
            UNION ALL SELECT 'version', d.id::text, k.key FROM k CROSS JOIN LATERAL (SELECT id FROM write_node_versions WHERE node_key = k.key OFFSET 0) d
            """).rows.map { row throws(KTDBError) in
            guard let kind = Dependents.Kind(rawValue: try row.decode(0, as: String.self)) else { throw KTDBError(code: .decoding, message: "unknown dependent kind") }
            return Dependents.Entry(kind: kind, value: try row.decode(1, as: String.self), nodeKey: try row.decode(2, as: String.self))
        })
    }

    /// Applies what waited for new nodes: children and perspectives that arrived before their
    /// node point at it now; edges, dimensions, counters, reports and versions graph-db lacks
    /// are applied (for example after a node was deleted and re-created).
    private func applyDependents(_ waiting: Dependents, _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws {
        for (kind, column) in [(Dependents.Kind.child, "parent_id"), (.perspective, "source_concept_id")] {
            let pairs = waiting.pointers(kind)
            guard !pairs.isEmpty else { continue }
            let changed = try await t.query("""
                UPDATE nodes n SET \(unsafeRaw: column) = u.p FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS u(c, p)
                WHERE n.id = u.c AND n.\(unsafeRaw: column) IS DISTINCT FROM u.p RETURNING u.p
                """).uuids(0)
            if column == "parent_id" { touched.formUnion(changed) }
        }
        let edges = try await missing(waiting.values(.edge), from: "edges", t)
        if !edges.isEmpty { _ = try await applyEdges(edges, w, t, touched: &touched) }
        let dimensions = try await missing(waiting.values(.dimension), from: "dimensions", t)
        if !dimensions.isEmpty { _ = try await applyDimensions(dimensions, w, t, touched: &touched) }
        let counterKeys = waiting.values(.counters), reportKeys = waiting.values(.report), versionIDs = waiting.values(.version)
        if !counterKeys.isEmpty { _ = try await applyCounterRows(counterKeys, w, t) }
        if !reportKeys.isEmpty { _ = try await applyConvergenceReports(reportKeys, w, t) }
        if !versionIDs.isEmpty { _ = try await applyNodeVersions(versionIDs, w, t) }
    }

    // MARK: Edges

    private struct EdgeRow: Encodable {
        var id: String, sourceNodeId: String, targetNodeId: String, relationshipType: String, weight: Double, justification: String?, weightSource: String?
    }

    private func applyEdges(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [EdgeRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query("""
            SELECT e.key, e.source_node_key, e.target_node_key, e.relationship_type, e.weight, e.justification, e.weight_source, e.fact_ids FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_edges WHERE key = k.key OFFSET 0) e
            """).rows {
            let key = try row.decode("key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            let type = try row.decode("relationship_type", as: String.self)
            let (source, target) = GraphKeys.orderedNodeIDs(
                type, GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)), GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)))
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(EdgeRow(id: id, sourceNodeId: source.postgresText, targetNodeId: target.postgresText, relationshipType: type,
                                weight: try row.decode("weight", as: Double.self), justification: try row.decode("justification", as: String?.self),
                                weightSource: try row.decode("weight_source", as: String?.self)))
            factIDs[id] = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.postgresText)
        }
        var outcomes = Self.allApplied(keys)
        let deleted = keys.filter { !presentKeys.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty {
            for row in try await t.query("DELETE FROM edges WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING source_node_id, target_node_id").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
        }
        let nodes = try await existing("nodes", rows.flatMap { [$0.sourceNodeId, $0.targetNodeId] }, t)
        let ready = rows.filter { nodes.contains($0.sourceNodeId) && nodes.contains($0.targetNodeId) }
        for row in rows where !(nodes.contains(row.sourceNodeId) && nodes.contains(row.targetNodeId)) {
            outcomes[keyOfID[row.id]!] = .deferred("a node of the edge is not in graph-db yet")
        }
        guard !ready.isEmpty else { return outcomes }
        try await t.query("""
            INSERT INTO edges (id, source_node_id, target_node_id, relationship_type, weight, justification, weight_source)
            SELECT b.id, b.source_node_id, b.target_node_id, b.relationship_type, b.weight, b.justification, b.weight_source
            FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, source_node_id uuid, target_node_id uuid, relationship_type text,
                                                               weight float8, justification text, weight_source text)
            ON CONFLICT (id) DO UPDATE SET weight = EXCLUDED.weight, justification = EXCLUDED.justification, weight_source = EXCLUDED.weight_source, updated_at = now()
            """)
        let ids = ready.map(\.id)
        try await mirrorJunction("edge_facts", owner: "edge_id", owners: ids, wanted: ids.flatMap { id in factIDs[id, default: []].map { (id, $0) } }, t)
        for row in ready { touched.formUnion([row.sourceNodeId, row.targetNodeId].compactMap(UUID.init(uuidString:))) }
        return outcomes
    }

    // MARK: Dimensions

    private struct DimensionRow: Encodable {
        var id: String, nodeId: String, modelId: String, content: String, confidence: Double?, suggestedConcepts: [String]?
        var batchIndex: Int, factCount: Int, isDefinitive: Bool, generatedAt: String
    }

    private func applyDimensions(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [DimensionRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query("""
            SELECT d.key, d.node_key, d.model_id, d.content, d.confidence, d.suggested_concepts, d.batch_index, d.fact_count, d.is_definitive,
                   d.fact_ids, d.created_at
            FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_dimensions WHERE key = k.key OFFSET 0) d
            """).rows {
            let key = try row.decode("key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(DimensionRow(
                id: id, nodeId: GraphKeys.id(forKey: try row.decode("node_key", as: String.self)).postgresText, modelId: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                suggestedConcepts: try row.decode("suggested_concepts", as: [String]?.self), batchIndex: try row.decode("batch_index", as: Int.self),
                factCount: try row.decode("fact_count", as: Int.self), isDefinitive: try row.decode("is_definitive", as: Bool.self),
                generatedAt: try row.decode("created_at", as: Date.self).postgresText))
            factIDs[id] = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.postgresText)
        }
        var outcomes = Self.allApplied(keys)
        let deleted = keys.filter { !presentKeys.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty {
            touched.formUnion(try await t.query("DELETE FROM dimensions WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING node_id").uuids(0))
        }
        let nodes = try await existing("nodes", rows.map(\.nodeId), t)
        for row in rows where !nodes.contains(row.nodeId) { outcomes[keyOfID[row.id]!] = .deferred("the dimension's node is not in graph-db yet") }
        let ready = rows.filter { nodes.contains($0.nodeId) }
        guard !ready.isEmpty else { return outcomes }
        try await t.query("""
            INSERT INTO dimensions (id, node_id, model_id, content, confidence, suggested_concepts, batch_index, fact_count, is_definitive, generated_at)
            SELECT b.id, b.node_id, b.model_id, b.content, b.confidence, b.suggested_concepts, b.batch_index, b.fact_count, b.is_definitive, b.generated_at
            FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, node_id uuid, model_id text, content text, confidence float8,
                                                               suggested_concepts text[], batch_index int, fact_count int, is_definitive bool, generated_at timestamptz)
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, confidence = EXCLUDED.confidence, suggested_concepts = EXCLUDED.suggested_concepts,
                fact_count = EXCLUDED.fact_count, is_definitive = EXCLUDED.is_definitive
            """)
        let ids = ready.map(\.id)
        try await mirrorJunction("dimension_facts", owner: "dimension_id", owners: ids, wanted: ids.flatMap { id in factIDs[id, default: []].map { (id, $0) } }, t)
        touched.formUnion(ready.compactMap { UUID(uuidString: $0.nodeId) })
        return outcomes
    }

    // MARK: Counters

    private struct CounterRow: Encodable {
        var nodeId: String, accessCount: Int, updateCount: Int, seedFactCount: Int
    }

    private func applyCounterRows(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var rows: [CounterRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:]
        for row in try await w.query("""
            SELECT c.node_key, c.access_count, c.update_count, c.seed_fact_count FROM unnest(\(keys)::text[]) AS k(key)
            CROSS JOIN LATERAL (SELECT * FROM write_node_counters WHERE node_key = k.key OFFSET 0) c
            """).rows {
            let key = try row.decode("node_key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(CounterRow(nodeId: id, accessCount: try row.decode("access_count", as: Int.self), updateCount: try row.decode("update_count", as: Int.self),
                                   seedFactCount: try row.decode("seed_fact_count", as: Int.self)))
        }
        var outcomes = Self.allApplied(keys)
        let deleted = keys.filter { !presentKeys.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty { try await t.query("DELETE FROM node_counters WHERE node_id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing("nodes", rows.map(\.nodeId), t)
        for row in rows where !nodes.contains(row.nodeId) { outcomes[keyOfID[row.nodeId]!] = .deferred("the counters' node is not in graph-db yet") }
        let ready = rows.filter { nodes.contains($0.nodeId) }
        guard !ready.isEmpty else { return outcomes }
        let document = try Self.json(ready)
        try await t.query("""
            INSERT INTO node_counters (node_id, access_count, update_count, seed_fact_count)
            SELECT b.node_id, b.access_count, b.update_count, b.seed_fact_count
            FROM jsonb_to_recordset(\(document)) AS b(node_id uuid, access_count int, update_count int, seed_fact_count int)
            ON CONFLICT (node_id) DO UPDATE SET access_count = EXCLUDED.access_count, update_count = EXCLUDED.update_count, seed_fact_count = EXCLUDED.seed_fact_count
            """)
        try await t.query("""
            UPDATE nodes n SET access_count = b.access_count, update_count = b.update_count
            FROM jsonb_to_recordset(\(document)) AS b(node_id uuid, access_count int, update_count int)
            WHERE n.id = b.node_id AND (n.access_count, n.update_count) IS DISTINCT FROM (b.access_count, b.update_count)
            """)
        return outcomes
    }

    // MARK: Helpers

    /// Which of `ids` (lower-case UUID text) are in graph-db's `table`, found by primary key
    /// one by one (`LATERAL … OFFSET 0`) whatever the planner's statistics say about the table.
    func existing(_ table: String, _ ids: [String], _ t: PostgresTransaction) async throws -> Set<String> {
        let found = try await t.query("""
            SELECT x.id FROM unnest(\(Array(Set(ids)))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id FROM \(unsafeRaw: table) WHERE id = k.id OFFSET 0) x
            """).uuids(0)
        return Set(found.map(\.postgresText))
    }

    /// The write-db keys among `keys` whose rows (by id, uuid5 of the key) graph-db's `table` lacks.
    private func missing(_ keys: [String], from table: String, _ t: PostgresTransaction) async throws -> [String] {
        guard !keys.isEmpty else { return [] }
        let ids = keys.map { GraphKeys.id(forKey: $0).postgresText }
        let have = try await existing(table, ids, t)
        return zip(keys, ids).filter { !have.contains($0.1) }.map(\.0)
    }

    /// Makes `junction` hold exactly `wanted` for `owners` (pairs whose fact is not in graph-db are left out).
    private func mirrorJunction(_ junction: String, owner: String, owners: [String], wanted: [(String, String)], _ t: PostgresTransaction) async throws {
        let wantedOwners = wanted.map(\.0), wantedFacts = wanted.map(\.1)
        try await t.query("""
            WITH stale AS (
                SELECT j.o, j.f FROM unnest(\(owners)::uuid[]) AS k(id)
                CROSS JOIN LATERAL (SELECT \(unsafeRaw: owner) AS o, fact_id AS f FROM \(unsafeRaw: junction) WHERE \(unsafeRaw: owner) = k.id OFFSET 0) j
                EXCEPT SELECT * FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]))
            DELETE FROM \(unsafeRaw: junction) j USING stale WHERE j.\(unsafeRaw: owner) = stale.o AND j.fact_id = stale.f
            """)
        guard !wanted.isEmpty else { return }
        try await t.query("""
            INSERT INTO \(unsafeRaw: junction) (\(unsafeRaw: owner), fact_id)
            SELECT w.o, w.f FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]) AS w(o, f)
            CROSS JOIN LATERAL (SELECT id FROM facts WHERE id = w.f OFFSET 0) f
            ON CONFLICT DO NOTHING
            """)
    }

    static func allApplied(_ keys: [String]) -> Outcomes {
        Dictionary(keys.map { ($0, Result.applied) }, uniquingKeysWith: { first, _ in first })
    }

    /// JSON object documents (each already JSON text) as one `jsonb` array.
    static func jsonArray(_ documents: [String]) -> PostgresJSON {
        PostgresJSON(text: "[" + documents.joined(separator: ",") + "]")
    }

    /// Rows as one `jsonb` array with snake_case keys (absent keys read as NULL).
    static func json(_ rows: some Encodable) throws -> PostgresJSON {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return PostgresJSON(text: String(decoding: try encoder.encode(rows), as: UTF8.self))
    }
}
