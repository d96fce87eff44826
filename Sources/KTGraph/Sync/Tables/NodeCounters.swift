import Foundation
import KTDB

/// `write_node_counters` → the counters of `nodes`.
extension SyncEngine {
    struct CounterRow: Encodable {
        var nodeId: String, accessCount: Int, updateCount: Int, seedFactCount: Int
    }

    func applyCounterRows(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var rows: [CounterRow] = [], presentKeys: Set<String> = [], keyOfID: [String: String] = [:]
        for row in try await w.query(
            """
            SELECT c.node_key, c.access_count, c.update_count, c.seed_fact_count FROM unnest(\(keys)::text[]) AS k(key)
            CROSS JOIN LATERAL (SELECT * FROM \(writeDB.nodeCounters) WHERE node_key = k.key OFFSET 0) c
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
        if !deleted.isEmpty { try await t.query("DELETE FROM \(graphDB.nodeCounters) WHERE node_id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing(.nodes, rows.map(\.nodeId), t)
        let (ready, waiting) = SyncPlan.readiness(rows) { [SyncPlan.Need(id: $0.nodeId, present: nodes, reason: "the counters' node is not in graph-db yet")] }
        for (row, reason) in waiting { outcomes[keyOfID[row.nodeId]!] = .deferred(reason) }
        guard !ready.isEmpty else { return outcomes }
        let document = try Self.json(ready)
        try await t.query(
            """
            INSERT INTO \(graphDB.nodeCounters) (node_id, access_count, update_count, seed_fact_count)
            SELECT b.node_id, b.access_count, b.update_count, b.seed_fact_count
            FROM jsonb_to_recordset(\(document)) AS b(node_id uuid, access_count int, update_count int, seed_fact_count int)
            ON CONFLICT (node_id) DO UPDATE SET access_count = EXCLUDED.access_count, update_count = EXCLUDED.update_count, seed_fact_count = EXCLUDED.seed_fact_count
            """)
        try await t.query(
            """
            UPDATE \(graphDB.nodes) n SET access_count = b.access_count, update_count = b.update_count
            FROM jsonb_to_recordset(\(document)) AS b(node_id uuid, access_count int, update_count int)
            WHERE n.id = b.node_id AND (n.access_count, n.update_count) IS DISTINCT FROM (b.access_count, b.update_count)
            """)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_node_counters` → graph-db.
    static let nodeCounters = TableSyncer(table: .nodeCounters, keyColumn: "node_key") { engine, keys, w, t, touched in
        try await engine.applyCounterRows(keys, w, t)
    }
}
