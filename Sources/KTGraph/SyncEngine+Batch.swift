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

    struct FactRow: Encodable {
        var id: String, content: String, factType: String, createdAt: String
    }

    func applyFacts(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var ready: [FactRow] = [], pending: Set<String> = [], present: Set<String> = []
        for row in try await w.query(
            """
            SELECT f.id, f.content, f.fact_type, f.dedup_status, f.created_at FROM unnest(\(ids)::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT * FROM write_facts WHERE id = k.id OFFSET 0) f
            """
        ).rows {
            let id = try row.decode("id", as: UUID.self).postgresText
            present.insert(id)
            if try row.decode("dedup_status", as: String.self) == "ready" {
                ready.append(
                    FactRow(
                        id: id, content: try row.decode("content", as: String.self), factType: try row.decode("fact_type", as: String.self),
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
            try await t.query(
                """
                INSERT INTO facts (id, content, fact_type, created_at)
                SELECT b.id, b.content, b.fact_type, b.created_at FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, content text, fact_type text, created_at timestamptz)
                ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type
                """)
            // Junctions that were waiting for these facts (a node, edge or dimension that arrived first).
            let readyIDs = ready.map(\.id)
            let nodePairs = try await w.query(
                """
                SELECT n.node_uuid, f.fact FROM write_nodes n CROSS JOIN LATERAL unnest(n.fact_ids) AS f(fact)
                WHERE n.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                  AND NOT EXISTS (SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid AND r.fact_id::text = f.fact)
                """
            ).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: String.self)) }
            if !nodePairs.isEmpty {
                touched.formUnion(
                    try await t.query(
                        """
                        INSERT INTO node_facts (node_id, fact_id) SELECT p.n, p.f FROM unnest(\(nodePairs.map(\.0))::uuid[], \(nodePairs.map(\.1))::uuid[]) AS p(n, f)
                        WHERE EXISTS (SELECT 1 FROM nodes WHERE id = p.n) ON CONFLICT DO NOTHING RETURNING node_id
                        """
                    ).uuids(0))
            }
            // Rejections that were waiting for these facts.
            let rejections = try await w.query(
                """
                SELECT node_id::text, fact_id::text FROM write_node_fact_rejections WHERE fact_id = ANY(\(readyIDs)::uuid[])
                """
            ).rows.map { row throws(KTDBError) in (try row.decode(0, as: String.self), try row.decode(1, as: String.self)) }
            if !rejections.isEmpty {
                try await t.query(
                    """
                    INSERT INTO node_fact_rejections (id, node_id, fact_id)
                    SELECT gen_random_uuid(), r.n, r.f FROM unnest(\(rejections.map(\.0))::uuid[], \(rejections.map(\.1))::uuid[]) AS r(n, f)
                    WHERE EXISTS (SELECT 1 FROM nodes WHERE id = r.n) ON CONFLICT DO NOTHING
                    """)
            }
            for (source, owners, junction, owner) in [("write_edges", "edges", "edge_facts", "edge"), ("write_dimensions", "dimensions", "dimension_facts", "dimension")] {
                let pairs = try await w.query(
                    """
                    SELECT s.key, f.fact FROM \(unsafeRaw: source) s CROSS JOIN LATERAL unnest(s.fact_ids) AS f(fact)
                    WHERE s.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                    """
                ).rows.map { row throws(KTDBError) in (GraphKeys.id(forKey: try row.decode(0, as: String.self)).postgresText, try row.decode(1, as: String.self)) }
                guard !pairs.isEmpty else { continue }
                try await t.query(
                    """
                    INSERT INTO \(unsafeRaw: junction) (\(unsafeRaw: owner)_id, fact_id) SELECT p.o, p.f FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS p(o, f)
                    WHERE EXISTS (SELECT 1 FROM \(unsafeRaw: owners) WHERE id = p.o) ON CONFLICT DO NOTHING
                    """)
            }
        }
        for id in pending { outcomes[keyOfID[id]!] = .deferred("fact is not ready (dedup pending)") }
        return outcomes
    }

    // MARK: Edges

    struct EdgeRow: Encodable {
        var id: String, sourceNodeId: String, targetNodeId: String, relationshipType: String, weight: Double, justification: String?, weightSource: String?
    }

    func applyEdges(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [EdgeRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query(
            """
            SELECT e.key, e.source_node_key, e.target_node_key, e.relationship_type, e.weight, e.justification, e.weight_source, e.fact_ids FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_edges WHERE key = k.key OFFSET 0) e
            """
        ).rows {
            let key = try row.decode("key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            let type = try row.decode("relationship_type", as: String.self)
            let (source, target) = GraphKeys.orderedNodeIDs(
                RelationshipType(rawValue: type), GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)), GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)))
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(
                EdgeRow(
                    id: id, sourceNodeId: source.postgresText, targetNodeId: target.postgresText, relationshipType: type,
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
        try await t.query(
            """
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

    struct DimensionRow: Encodable {
        var id: String, nodeId: String, modelId: String, content: String, confidence: Double?, suggestedConcepts: [String]?
        var batchIndex: Int, factCount: Int, isDefinitive: Bool, generatedAt: String
    }

    func applyDimensions(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [DimensionRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query(
            """
            SELECT d.key, d.node_key, d.model_id, d.content, d.confidence, d.suggested_concepts, d.batch_index, d.fact_count, d.is_definitive,
                   d.fact_ids, d.created_at
            FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_dimensions WHERE key = k.key OFFSET 0) d
            """
        ).rows {
            let key = try row.decode("key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(
                DimensionRow(
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
        try await t.query(
            """
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

    struct CounterRow: Encodable {
        var nodeId: String, accessCount: Int, updateCount: Int, seedFactCount: Int
    }

    func applyCounterRows(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var rows: [CounterRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:]
        for row in try await w.query(
            """
            SELECT c.node_key, c.access_count, c.update_count, c.seed_fact_count FROM unnest(\(keys)::text[]) AS k(key)
            CROSS JOIN LATERAL (SELECT * FROM write_node_counters WHERE node_key = k.key OFFSET 0) c
            """
        ).rows {
            let key = try row.decode("node_key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(
                CounterRow(
                    nodeId: id, accessCount: try row.decode("access_count", as: Int.self), updateCount: try row.decode("update_count", as: Int.self),
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
        try await t.query(
            """
            INSERT INTO node_counters (node_id, access_count, update_count, seed_fact_count)
            SELECT b.node_id, b.access_count, b.update_count, b.seed_fact_count
            FROM jsonb_to_recordset(\(document)) AS b(node_id uuid, access_count int, update_count int, seed_fact_count int)
            ON CONFLICT (node_id) DO UPDATE SET access_count = EXCLUDED.access_count, update_count = EXCLUDED.update_count, seed_fact_count = EXCLUDED.seed_fact_count
            """)
        try await t.query(
            """
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
        let found = try await t.query(
            """
            SELECT x.id FROM unnest(\(Array(Set(ids)))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id FROM \(unsafeRaw: table) WHERE id = k.id OFFSET 0) x
            """
        ).uuids(0)
        return Set(found.map(\.postgresText))
    }

    /// The write-db keys among `keys` whose rows (by id, uuid5 of the key) graph-db's `table` lacks.
    func missing(_ keys: [String], from table: String, _ t: PostgresTransaction) async throws -> [String] {
        guard !keys.isEmpty else { return [] }
        let ids = keys.map { GraphKeys.id(forKey: $0).postgresText }
        let have = try await existing(table, ids, t)
        return zip(keys, ids).filter { !have.contains($0.1) }.map(\.0)
    }

    /// Makes `junction` hold exactly `wanted` for `owners` (pairs whose fact is not in graph-db are left out).
    func mirrorJunction(_ junction: String, owner: String, owners: [String], wanted: [(String, String)], _ t: PostgresTransaction) async throws {
        let wantedOwners = wanted.map(\.0), wantedFacts = wanted.map(\.1)
        try await t.query(
            """
            WITH stale AS (
                SELECT j.o, j.f FROM unnest(\(owners)::uuid[]) AS k(id)
                CROSS JOIN LATERAL (SELECT \(unsafeRaw: owner) AS o, fact_id AS f FROM \(unsafeRaw: junction) WHERE \(unsafeRaw: owner) = k.id OFFSET 0) j
                EXCEPT SELECT * FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]))
            DELETE FROM \(unsafeRaw: junction) j USING stale WHERE j.\(unsafeRaw: owner) = stale.o AND j.fact_id = stale.f
            """)
        guard !wanted.isEmpty else { return }
        try await t.query(
            """
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
