import Foundation
import KTDB

/// `write_edges` → `edges` and `edge_facts`.
extension SyncEngine {
    struct EdgeRow: Encodable {
        var id: String, sourceNodeId: String, targetNodeId: String, relationshipType: String, weight: Double, justification: String?, weightSource: String?
    }

    func applyEdges(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, touched: inout Set<UUID>) async throws -> Outcomes {
        var rows: [EdgeRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:], factIDs: [String: [String]] = [:]
        for row in try await w.query(
            """
            SELECT e.key, e.source_node_key, e.target_node_key, e.relationship_type, e.weight, e.justification, e.weight_source, e.fact_ids FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.edges) WHERE key = k.key OFFSET 0) e
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
            for row in try await t.query("DELETE FROM \(graphDB.edges) WHERE id IN (SELECT unnest(\(deleted)::uuid[])) RETURNING source_node_id, target_node_id").rows {
                touched.insert(try row.decode(0, as: UUID.self))
                touched.insert(try row.decode(1, as: UUID.self))
            }
        }
        let nodes = try await existing(.nodes, rows.flatMap { [$0.sourceNodeId, $0.targetNodeId] }, t)
        let (ready, waiting) = SyncPlan.readiness(rows) {
            [$0.sourceNodeId, $0.targetNodeId].map { SyncPlan.Need(id: $0, present: nodes, reason: "a node of the edge is not in graph-db yet") }
        }
        for (row, reason) in waiting { outcomes[keyOfID[row.id]!] = .deferred(reason) }
        guard !ready.isEmpty else { return outcomes }
        try await t.query(
            """
            INSERT INTO \(graphDB.edges) (id, source_node_id, target_node_id, relationship_type, weight, justification, weight_source)
            SELECT b.id, b.source_node_id, b.target_node_id, b.relationship_type, b.weight, b.justification, b.weight_source
            FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, source_node_id uuid, target_node_id uuid, relationship_type text,
                                                               weight float8, justification text, weight_source text)
            ON CONFLICT (id) DO UPDATE SET weight = EXCLUDED.weight, justification = EXCLUDED.justification, weight_source = EXCLUDED.weight_source, updated_at = now()
            """)
        let ids = ready.map(\.id)
        try await mirrorJunction(.edgeFacts, owner: "edge_id", owners: ids, wanted: ids.flatMap { id in factIDs[id, default: []].map { (id, $0) } }, t)
        for row in ready { touched.formUnion([row.sourceNodeId, row.targetNodeId].compactMap(UUID.init(uuidString:))) }
        return outcomes
    }
}

extension TableSyncer {
    /// `write_edges` → graph-db.
    static let edges = TableSyncer(table: .edges, keyColumn: "key") { engine, keys, w, t, touched in
        try await engine.applyEdges(keys, w, t, touched: &touched)
    }
}
