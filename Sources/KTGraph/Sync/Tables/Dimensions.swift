import Foundation
import KTDB

/// `write_dimensions` → `dimensions` and `dimension_facts`.
extension SyncEngine {
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
            FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.dimensions) WHERE key = k.key OFFSET 0) d
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
            touched.formUnion(try await t.query("DELETE FROM \(graphDB.dimensions) WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING node_id").uuids(0))
        }
        let nodes = try await existing(.nodes, rows.map(\.nodeId), t)
        let (ready, waiting) = SyncPlan.readiness(rows) { [SyncPlan.Need(id: $0.nodeId, present: nodes, reason: "the dimension's node is not in graph-db yet")] }
        for (row, reason) in waiting { outcomes[keyOfID[row.id]!] = .deferred(reason) }
        guard !ready.isEmpty else { return outcomes }
        try await t.query(
            """
            INSERT INTO \(graphDB.dimensions) (id, node_id, model_id, content, confidence, suggested_concepts, batch_index, fact_count, is_definitive, generated_at)
            SELECT b.id, b.node_id, b.model_id, b.content, b.confidence, b.suggested_concepts, b.batch_index, b.fact_count, b.is_definitive, b.generated_at
            FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, node_id uuid, model_id text, content text, confidence float8,
                                                               suggested_concepts text[], batch_index int, fact_count int, is_definitive bool, generated_at timestamptz)
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, confidence = EXCLUDED.confidence, suggested_concepts = EXCLUDED.suggested_concepts,
                fact_count = EXCLUDED.fact_count, is_definitive = EXCLUDED.is_definitive
            """)
        let ids = ready.map(\.id)
        try await mirrorJunction(.dimensionFacts, owner: "dimension_id", owners: ids, wanted: ids.flatMap { id in factIDs[id, default: []].map { (id, $0) } }, t)
        touched.formUnion(ready.compactMap { UUID(uuidString: $0.nodeId) })
        return outcomes
    }
}

extension TableSyncer {
    /// `write_dimensions` → graph-db.
    static let dimensions = TableSyncer(table: .dimensions, keyColumn: "key") { engine, keys, w, t, touched in
        try await engine.applyDimensions(keys, w, t, touched: &touched)
    }
}
