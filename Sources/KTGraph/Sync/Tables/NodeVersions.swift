import Foundation
import KTDB

/// `write_node_versions` → `node_versions`.
extension SyncEngine {
    func applyNodeVersions(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var present: [String] = [], nodeIDs: [String] = [], documents: [String] = []
        for row in try await w.query(
            """
            SELECT v.id, v.node_key, (to_jsonb(v) - 'node_key' - 'updated_at')::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.nodeVersions) WHERE id = k.id OFFSET 0) v
            """
        ).rows {
            present.append(try row.decode(0, as: UUID.self).postgresText)
            nodeIDs.append(GraphKeys.id(forKey: try row.decode(1, as: String.self)).postgresText)
            documents.append(try row.decode(2, as: String.self))
        }
        let presentSet = Set(present)
        let deleted = ids.filter { !presentSet.contains($0) }
        if !deleted.isEmpty { try await t.query("DELETE FROM \(graphDB.nodeVersions) WHERE id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing(.nodes, nodeIDs, t)
        let (readyRows, waiting) = SyncPlan.readiness(Array(present.indices)) { [SyncPlan.Need(id: nodeIDs[$0], present: nodes, reason: "the version's node is not in graph-db yet")] }
        for (index, reason) in waiting { outcomes[keyOfID[present[index]]!] = .deferred(reason) }
        let readyIDs = readyRows.map { present[$0] }, readyNodes = readyRows.map { nodeIDs[$0] }, ready = readyRows.map { documents[$0] }
        guard !ready.isEmpty else { return outcomes }
        let document = Self.jsonArray(ready)
        // A version number re-used by a new row replaces the old row.
        try await t.query(
            """
            DELETE FROM \(graphDB.nodeVersions) v USING (SELECT r.id, k.node_id, r.version_number
                FROM jsonb_populate_recordset(NULL::\(graphDB.nodeVersions), \(document)) AS r
                JOIN unnest(\(readyIDs)::uuid[], \(readyNodes)::uuid[]) AS k(id, node_id) ON k.id = r.id) b
            WHERE v.node_id = b.node_id AND v.version_number = b.version_number AND v.id <> b.id
            """)
        try await t.query(
            """
            INSERT INTO \(graphDB.nodeVersions) (id, node_id, version_number, snapshot, source_node_count, is_default, created_at)
            SELECT r.id, k.node_id, r.version_number, r.snapshot, r.source_node_count, r.is_default, r.created_at
            FROM jsonb_populate_recordset(NULL::\(graphDB.nodeVersions), \(document)) AS r
            JOIN unnest(\(readyIDs)::uuid[], \(readyNodes)::uuid[]) AS k(id, node_id) ON k.id = r.id
            ON CONFLICT (id) DO UPDATE SET node_id = EXCLUDED.node_id, version_number = EXCLUDED.version_number, snapshot = EXCLUDED.snapshot,
                source_node_count = EXCLUDED.source_node_count, is_default = EXCLUDED.is_default
            """)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_node_versions` → graph-db.
    static let nodeVersions = TableSyncer(table: .nodeVersions, keyColumn: "id::text") { engine, keys, w, t, touched in
        try await engine.applyNodeVersions(keys, w, t)
    }
}
