import Foundation
import KTDB

/// The set-based path of the sync: one table's keys applied with a handful of statements
/// (rows travel to graph-db as one `jsonb` parameter, expanded by `jsonb_to_recordset`),
/// instead of several round trips per row. It gives the same result as applying each key alone
/// (``SyncEngine`` falls back to that path, row by row in savepoints, when a batch fails).
extension SyncEngine {
    typealias Outcomes = [String: Result]

    /// Applies `keys` of `table` in graph-db transaction `t`, reading write-db through `w`.
    func applyBatch(_ table: String, _ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        switch table {
        case "write_facts": try await applyFacts(keys, w, t, touched: &touched)
        case "write_nodes": try await applyNodes(keys, w, t, touched: &touched)
        case "write_edges": try await applyEdges(keys, w, t, touched: &touched)
        case "write_dimensions": try await applyDimensions(keys, w, t, touched: &touched)
        case "write_node_counters": try await applyCounterRows(keys, w, t)
        default: Dictionary(uniqueKeysWithValues: keys.map { ($0, Result.failed("unknown table \(table)")) })
        }
    }

    // MARK: Facts

    private struct FactRow: Encodable {
        var id: String, content: String, factType: String, createdAt: String
    }

    private func applyFacts(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var outcomes: Outcomes = [:]
        var idOfKey: [String: String] = [:]
        for key in keys {
            if let id = UUID(uuidString: key) { idOfKey[key] = id.postgresText } else { outcomes[key] = .failed("not a fact id: \(key)") }
        }
        let ids = Array(Set(idOfKey.values))
        var ready: [FactRow] = [], pending: Set<String> = [], present: Set<String> = []
        for row in try await w.query("SELECT id, content, fact_type, dedup_status, created_at FROM write_facts WHERE id = ANY(\(ids)::uuid[])").rows {
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
            touched.formUnion(try await t.query("DELETE FROM node_facts WHERE fact_id = ANY(\(missing)::uuid[]) RETURNING node_id").uuids(0))
            try await t.query("DELETE FROM facts WHERE id = ANY(\(missing)::uuid[])")
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
                WHERE n.fact_ids && \(readyIDs)::text[] AND f.fact = ANY(\(readyIDs)::text[])
                  AND NOT EXISTS (SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = n.node_uuid AND r.fact_id::text = f.fact)
                """).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: String.self)) }
            if !nodePairs.isEmpty {
                touched.formUnion(try await t.query("""
                    INSERT INTO node_facts (node_id, fact_id) SELECT p.n, p.f FROM unnest(\(nodePairs.map(\.0))::uuid[], \(nodePairs.map(\.1))::uuid[]) AS p(n, f)
                    WHERE EXISTS (SELECT 1 FROM nodes WHERE id = p.n) ON CONFLICT DO NOTHING RETURNING node_id
                    """).uuids(0))
            }
            for (source, junction, owner) in [("write_edges", "edge_facts", "edge"), ("write_dimensions", "dimension_facts", "dimension")] {
                let pairs = try await w.query("""
                    SELECT s.key, f.fact FROM \(unsafeRaw: source) s CROSS JOIN LATERAL unnest(s.fact_ids) AS f(fact)
                    WHERE s.fact_ids && \(readyIDs)::text[] AND f.fact = ANY(\(readyIDs)::text[])
                    """).rows.map { row throws(KTDBError) in (GraphKeys.id(forKey: try row.decode(0, as: String.self)).postgresText, try row.decode(1, as: String.self)) }
                guard !pairs.isEmpty else { continue }
                let owners = owner == "edge" ? "edges" : "dimensions"
                try await t.query("""
                    INSERT INTO \(unsafeRaw: junction) (\(unsafeRaw: owner)_id, fact_id) SELECT p.o, p.f FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS p(o, f)
                    WHERE EXISTS (SELECT 1 FROM \(unsafeRaw: owners) WHERE id = p.o) ON CONFLICT DO NOTHING
                    """)
            }
        }
        for (key, id) in idOfKey {
            outcomes[key] = pending.contains(id) ? .deferred("fact is not ready (dedup pending)") : .applied
        }
        return outcomes
    }

    // MARK: Nodes

    private struct NodeRow: Encodable {
        var id: String, concept: String, nodeType: String, entitySubtype: String?, parentId: String?, sourceConceptId: String?
        var definition: String?, definitionSource: String?, attractor: String?, filterId: String?, maxContentTokens: Int?
        var staleAfter: Int, visibility: String, createdAt: String, updatedAt: String
    }

    private func applyNodes(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [NodeRow] = [], presentKeys: Set<String> = [], factIDs: [String: [String]] = [:], newParents: [UUID] = []
        for row in try await w.query("""
            SELECT key, concept, node_type, entity_subtype, parent_key, source_concept_key, definition, definition_source, attractor, filter_id,
                   max_content_tokens, stale_after, fact_ids, visibility, created_at, updated_at FROM write_nodes WHERE key = ANY(\(keys))
            """).rows {
            let key = try row.decode("key", as: String.self)
            let id = GraphKeys.id(forKey: key)
            presentKeys.insert(key)
            let parent = try row.decode("parent_key", as: String?.self).map(GraphKeys.id(forKey:))
            if let parent { newParents.append(parent) }
            rows.append(NodeRow(
                id: id.postgresText, concept: try row.decode("concept", as: String.self), nodeType: try row.decode("node_type", as: String.self),
                entitySubtype: try row.decode("entity_subtype", as: String?.self), parentId: parent?.postgresText,
                sourceConceptId: try row.decode("source_concept_key", as: String?.self).map { GraphKeys.id(forKey: $0).postgresText },
                definition: try row.decode("definition", as: String?.self), definitionSource: try row.decode("definition_source", as: String?.self),
                attractor: try row.decode("attractor", as: String?.self), filterId: try row.decode("filter_id", as: String?.self),
                maxContentTokens: try row.decode("max_content_tokens", as: Int?.self), staleAfter: try row.decode("stale_after", as: Int.self),
                visibility: try row.decode("visibility", as: String.self), createdAt: try row.decode("created_at", as: Date.self).postgresText,
                updatedAt: try row.decode("updated_at", as: Date.self).postgresText))
            factIDs[id.postgresText] = try row.decode("fact_ids", as: [String].self).compactMap(UUID.init(uuidString:)).map(\.postgresText)
        }
        let deleted = keys.filter { !presentKeys.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty {
            for row in try await t.query("SELECT source_node_id, target_node_id FROM edges WHERE source_node_id = ANY(\(deleted)::uuid[]) OR target_node_id = ANY(\(deleted)::uuid[])").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
            touched.formUnion(try await t.query("DELETE FROM nodes WHERE id = ANY(\(deleted)::uuid[]) RETURNING parent_id").optionalUUIDs(0))
            touched.subtract(deleted.compactMap(UUID.init(uuidString:)))
        }
        guard !rows.isEmpty else { return Self.allApplied(keys) }
        let ids = rows.map(\.id)
        var existing: Set<UUID> = []
        for row in try await t.query("SELECT id, parent_id FROM nodes WHERE id = ANY(\(ids)::uuid[])").rows {
            existing.insert(try row.decode(0, as: UUID.self))
            if let old = try row.decode(1, as: UUID?.self) { touched.insert(old) }
        }
        // A parent or perspective source is set when it is in graph-db or in this batch (foreign
        // keys are checked at the end of the statement).
        try await t.query("""
            WITH b AS (SELECT * FROM jsonb_to_recordset(\(try Self.json(rows))) AS b(
                id uuid, concept text, node_type text, entity_subtype text, parent_id uuid, source_concept_id uuid, definition text,
                definition_source text, attractor text, filter_id text, max_content_tokens int, stale_after int, visibility text,
                created_at timestamptz, updated_at timestamptz))
            INSERT INTO nodes (id, concept, node_type, entity_subtype, parent_id, source_concept_id, definition, definition_source, attractor,
                               filter_id, max_content_tokens, stale_after, visibility, created_at, updated_at)
            SELECT b.id, b.concept, b.node_type, b.entity_subtype,
                   CASE WHEN b.parent_id IN (SELECT id FROM b) OR EXISTS (SELECT 1 FROM nodes p WHERE p.id = b.parent_id) THEN b.parent_id END,
                   CASE WHEN b.source_concept_id IN (SELECT id FROM b) OR EXISTS (SELECT 1 FROM nodes s WHERE s.id = b.source_concept_id) THEN b.source_concept_id END,
                   b.definition, b.definition_source, b.attractor, b.filter_id, b.max_content_tokens, b.stale_after, b.visibility, b.created_at, b.updated_at
            FROM b
            ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, entity_subtype = EXCLUDED.entity_subtype,
                parent_id = EXCLUDED.parent_id, source_concept_id = EXCLUDED.source_concept_id, definition = EXCLUDED.definition,
                definition_source = EXCLUDED.definition_source, attractor = EXCLUDED.attractor, filter_id = EXCLUDED.filter_id,
                max_content_tokens = EXCLUDED.max_content_tokens, stale_after = EXCLUDED.stale_after, visibility = EXCLUDED.visibility,
                updated_at = EXCLUDED.updated_at
            """)
        touched.formUnion(ids.compactMap(UUID.init(uuidString:)))
        touched.formUnion(newParents)
        // node_facts mirror fact_ids exactly: present facts, not rejected.
        var rejected: Set<[String]> = []
        for row in try await w.query("SELECT node_id, fact_id FROM write_node_fact_rejections WHERE node_id = ANY(\(ids)::uuid[])").rows {
            rejected.insert([try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: UUID.self).postgresText])
        }
        let wanted = factIDs.flatMap { node, facts in facts.map { (node, $0) } }.filter { !rejected.contains([$0.0, $0.1]) }
        try await mirrorJunction("node_facts", owner: "node_id", owners: ids, wanted: wanted, t)
        // Only a node new to graph-db can have children, perspectives, edges, dimensions or
        // counters waiting for it (a node already there had them applied when they arrived).
        let newKeys = Array(presentKeys.filter { !existing.contains(GraphKeys.id(forKey: $0)) })
        if !newKeys.isEmpty { try await applyDependents(ofNewNodes: newKeys, w, t, touched: &touched) }
        return Self.allApplied(keys)
    }

    private func applyDependents(ofNewNodes newKeys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws {
        // Children and perspectives that arrived before their node point at it now.
        for column in ["parent_key", "source_concept_key"] {
            let pairs = try await w.query("SELECT node_uuid, \(unsafeRaw: column) FROM write_nodes WHERE \(unsafeRaw: column) = ANY(\(newKeys))").rows
                .map { row throws(KTDBError) in (try row.decode(0, as: UUID.self).postgresText, GraphKeys.id(forKey: try row.decode(1, as: String.self)).postgresText) }
            guard !pairs.isEmpty else { continue }
            let target = column == "parent_key" ? "parent_id" : "source_concept_id"
            try await t.query("""
                UPDATE nodes n SET \(unsafeRaw: target) = u.p FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS u(c, p)
                WHERE n.id = u.c AND n.\(unsafeRaw: target) IS DISTINCT FROM u.p
                """)
        }
        // Edges and dimensions of these nodes that graph-db lacks (for example after a node was deleted and re-created).
        let edgeKeys = try await w.query("SELECT key FROM write_edges WHERE source_node_key = ANY(\(newKeys)) OR target_node_key = ANY(\(newKeys))").strings(0)
        if !edgeKeys.isEmpty {
            let have = Set(try await t.query("SELECT id FROM edges WHERE id = ANY(\(edgeKeys.map { GraphKeys.id(forKey: $0).postgresText })::uuid[])").uuids(0))
            let missing = edgeKeys.filter { !have.contains(GraphKeys.id(forKey: $0)) }
            if !missing.isEmpty { _ = try await applyEdges(missing, w, t, touched: &touched) }
        }
        let dimensionKeys = try await w.query("SELECT key FROM write_dimensions WHERE node_key = ANY(\(newKeys))").strings(0)
        if !dimensionKeys.isEmpty {
            let have = Set(try await t.query("SELECT id FROM dimensions WHERE id = ANY(\(dimensionKeys.map { GraphKeys.id(forKey: $0).postgresText })::uuid[])").uuids(0))
            let missing = dimensionKeys.filter { !have.contains(GraphKeys.id(forKey: $0)) }
            if !missing.isEmpty { _ = try await applyDimensions(missing, w, t, touched: &touched) }
        }
        let counterKeys = try await w.query("SELECT node_key FROM write_node_counters WHERE node_key = ANY(\(newKeys))").strings(0)
        if !counterKeys.isEmpty { _ = try await applyCounterRows(counterKeys, w, t) }
    }

    // MARK: Edges

    private struct EdgeRow: Encodable {
        var id: String, sourceNodeId: String, targetNodeId: String, relationshipType: String, weight: Double, justification: String?, weightSource: String?
    }

    private func applyEdges(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [EdgeRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query("""
            SELECT key, source_node_key, target_node_key, relationship_type, weight, justification, weight_source, fact_ids FROM write_edges WHERE key = ANY(\(keys))
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
            for row in try await t.query("DELETE FROM edges WHERE id = ANY(\(deleted)::uuid[]) RETURNING source_node_id, target_node_id").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
        }
        let nodes = Set(try await t.query("SELECT id FROM nodes WHERE id = ANY(\(Array(Set(rows.flatMap { [$0.sourceNodeId, $0.targetNodeId] })))::uuid[])").uuids(0)
            .map(\.postgresText))
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
            SELECT key, node_key, model_id, content, confidence, suggested_concepts, batch_index, fact_count, is_definitive, fact_ids, created_at
            FROM write_dimensions WHERE key = ANY(\(keys))
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
            touched.formUnion(try await t.query("DELETE FROM dimensions WHERE id = ANY(\(deleted)::uuid[]) RETURNING node_id").uuids(0))
        }
        let nodes = Set(try await t.query("SELECT id FROM nodes WHERE id = ANY(\(Array(Set(rows.map(\.nodeId))))::uuid[])").uuids(0).map(\.postgresText))
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
        for row in try await w.query("SELECT node_key, access_count, update_count, seed_fact_count FROM write_node_counters WHERE node_key = ANY(\(keys))").rows {
            let key = try row.decode("node_key", as: String.self), id = GraphKeys.id(forKey: key).postgresText
            presentKeys.insert(key)
            keyOfID[id] = key
            rows.append(CounterRow(nodeId: id, accessCount: try row.decode("access_count", as: Int.self), updateCount: try row.decode("update_count", as: Int.self),
                                   seedFactCount: try row.decode("seed_fact_count", as: Int.self)))
        }
        var outcomes = Self.allApplied(keys)
        let deleted = keys.filter { !presentKeys.contains($0) }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty { try await t.query("DELETE FROM node_counters WHERE node_id = ANY(\(deleted)::uuid[])") }
        let nodes = Set(try await t.query("SELECT id FROM nodes WHERE id = ANY(\(rows.map(\.nodeId))::uuid[])").uuids(0).map(\.postgresText))
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

    /// Makes `junction` hold exactly `wanted` for `owners` (pairs whose fact is not in graph-db are left out).
    private func mirrorJunction(_ junction: String, owner: String, owners: [String], wanted: [(String, String)], _ t: PostgresTransaction) async throws {
        let wantedOwners = wanted.map(\.0), wantedFacts = wanted.map(\.1)
        try await t.query("""
            DELETE FROM \(unsafeRaw: junction) j WHERE j.\(unsafeRaw: owner) = ANY(\(owners)::uuid[])
              AND NOT EXISTS (SELECT 1 FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]) AS w(o, f) WHERE w.o = j.\(unsafeRaw: owner) AND w.f = j.fact_id)
            """)
        guard !wanted.isEmpty else { return }
        try await t.query("""
            INSERT INTO \(unsafeRaw: junction) (\(unsafeRaw: owner), fact_id)
            SELECT w.o, w.f FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]) AS w(o, f) JOIN facts ON facts.id = w.f
            ON CONFLICT DO NOTHING
            """)
    }

    private static func allApplied(_ keys: [String]) -> Outcomes {
        Dictionary(keys.map { ($0, Result.applied) }, uniquingKeysWith: { first, _ in first })
    }

    /// Rows as one `jsonb` array with snake_case keys (absent keys read as NULL).
    static func json(_ rows: some Encodable) throws -> PostgresJSON {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return PostgresJSON(text: String(decoding: try encoder.encode(rows), as: UTF8.self))
    }
}

extension PostgresResult {
    /// Column `index` of every row as UUIDs.
    func uuids(_ index: Int) throws(KTDBError) -> [UUID] { try rows.map { row throws(KTDBError) in try row.decode(index, as: UUID.self) } }
    /// Column `index` of every row as UUIDs, NULLs left out.
    func optionalUUIDs(_ index: Int) throws(KTDBError) -> [UUID] {
        var ids: [UUID] = []
        for row in rows { if let id = try row.decode(index, as: UUID?.self) { ids.append(id) } }
        return ids
    }
    /// Column `index` of every row as strings.
    func strings(_ index: Int) throws(KTDBError) -> [String] { try rows.map { row throws(KTDBError) in try row.decode(index, as: String.self) } }
}
