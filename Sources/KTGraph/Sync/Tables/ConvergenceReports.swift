import Foundation
import KTDB

/// `write_convergence_reports` → `convergence_reports` (and `divergent_claims`).
extension SyncEngine {
    private struct ReportRow: Encodable {
        var id: String, nodeId: String, convergenceScore: Double, convergedClaims: [String]?, recommendedContent: String?, computedAt: String
    }

    func applyConvergenceReports(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        var rows: [ReportRow] = [], keyOfNode: [String: String] = [:]
        for row in try await w.query(
            """
            SELECT c.node_key, c.convergence_score, c.converged_claims, c.recommended_content, c.computed_at
            FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.convergenceReports) WHERE node_key = k.key OFFSET 0) c
            """
        ).rows {
            let key = try row.decode("node_key", as: String.self), node = GraphKeys.id(forKey: key).postgresText
            keyOfNode[node] = key
            rows.append(
                ReportRow(
                    id: GraphKeys.id(forKey: "convergence:" + key).postgresText, nodeId: node, convergenceScore: try row.decode("convergence_score", as: Double.self),
                    convergedClaims: try row.decode("converged_claims", as: [String]?.self), recommendedContent: try row.decode("recommended_content", as: String?.self),
                    computedAt: try row.decode("computed_at", as: Date.self).postgresText))
        }
        let deleted = keys.filter { keyOfNode[GraphKeys.id(forKey: $0).postgresText] == nil }.map { GraphKeys.id(forKey: $0).postgresText }
        if !deleted.isEmpty { try await t.query("DELETE FROM \(graphDB.convergenceReports) WHERE node_id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing(.nodes, rows.map(\.nodeId), t)
        let (ready, waiting) = SyncPlan.readiness(rows) { [SyncPlan.Need(id: $0.nodeId, present: nodes, reason: "the report's node is not in graph-db yet")] }
        for (row, reason) in waiting { outcomes[keyOfNode[row.nodeId]!] = .deferred(reason) }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO \(graphDB.convergenceReports) (id, node_id, convergence_score, converged_claims, recommended_content, computed_at)
                SELECT id, node_id, convergence_score, converged_claims, recommended_content, computed_at
                FROM jsonb_populate_recordset(NULL::\(graphDB.convergenceReports), \(try Self.json(ready)))
                ON CONFLICT (node_id) DO UPDATE SET convergence_score = EXCLUDED.convergence_score, converged_claims = EXCLUDED.converged_claims,
                    recommended_content = EXCLUDED.recommended_content, computed_at = EXCLUDED.computed_at
                """)
        }
        // The node's denormalised score follows its report (NULL without one).
        try await t.query(
            """
            UPDATE \(graphDB.nodes) n SET convergence_score = c.score
            FROM (SELECT k.id, (SELECT convergence_score FROM \(graphDB.convergenceReports) WHERE node_id = k.id) AS score
                  FROM unnest(\(deleted + ready.map(\.nodeId))::uuid[]) AS k(id)) c
            WHERE n.id = c.id AND n.convergence_score IS DISTINCT FROM c.score
            """)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_convergence_reports` → graph-db.
    static let convergenceReports = TableSyncer(table: .convergenceReports, keyColumn: "node_key") { engine, keys, w, t, touched in
        try await engine.applyConvergenceReports(keys, w, t)
    }
}
