import Foundation
import KTDB

/// `write_facts` → `facts` and their Qdrant-independent rows.
extension SyncEngine {
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
            CROSS JOIN LATERAL (SELECT * FROM \(writeDB.facts) WHERE id = k.id OFFSET 0) f
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
            touched.formUnion(try await t.query("DELETE FROM \(graphDB.nodeFacts) WHERE fact_id IN (SELECT unnest(\(missing)::uuid[])) RETURNING node_id").uuids(0))
            try await t.query("DELETE FROM \(graphDB.facts) WHERE id IN (SELECT unnest(\(missing)::uuid[]))")
        }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO \(graphDB.facts) (id, content, fact_type, created_at)
                SELECT b.id, b.content, b.fact_type, b.created_at FROM jsonb_to_recordset(\(try Self.json(ready))) AS b(id uuid, content text, fact_type text, created_at timestamptz)
                ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type
                """)
            // Junctions that were waiting for these facts (a node, edge or dimension that arrived first).
            let readyIDs = ready.map(\.id)
            let nodePairs = try await w.query(
                """
                SELECT n.node_uuid, f.fact FROM \(writeDB.nodes) n CROSS JOIN LATERAL unnest(n.fact_ids) AS f(fact)
                WHERE n.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                  AND NOT EXISTS (SELECT 1 FROM \(writeDB.nodeFactRejections) r WHERE r.node_id = n.node_uuid AND r.fact_id::text = f.fact)
                """
            ).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: String.self)) }
            if !nodePairs.isEmpty {
                touched.formUnion(
                    try await t.query(
                        """
                        INSERT INTO \(graphDB.nodeFacts) (node_id, fact_id) SELECT p.n, p.f FROM unnest(\(nodePairs.map(\.0))::uuid[], \(nodePairs.map(\.1))::uuid[]) AS p(n, f)
                        WHERE EXISTS (SELECT 1 FROM \(graphDB.nodes) WHERE id = p.n) ON CONFLICT DO NOTHING RETURNING node_id
                        """
                    ).uuids(0))
            }
            // Rejections that were waiting for these facts.
            let rejections = try await w.query(
                """
                SELECT node_id::text, fact_id::text FROM \(writeDB.nodeFactRejections) WHERE fact_id = ANY(\(readyIDs)::uuid[])
                """
            ).rows.map { row throws(KTDBError) in (try row.decode(0, as: String.self), try row.decode(1, as: String.self)) }
            if !rejections.isEmpty {
                try await t.query(
                    """
                    INSERT INTO \(graphDB.nodeFactRejections) (id, node_id, fact_id)
                    SELECT gen_random_uuid(), r.n, r.f FROM unnest(\(rejections.map(\.0))::uuid[], \(rejections.map(\.1))::uuid[]) AS r(n, f)
                    WHERE EXISTS (SELECT 1 FROM \(graphDB.nodes) WHERE id = r.n) ON CONFLICT DO NOTHING
                    """)
            }
            for (source, owners, junction, owner) in [(writeDB.edges, graphDB.edges, graphDB.edgeFacts, "edge_id"), (writeDB.dimensions, graphDB.dimensions, graphDB.dimensionFacts, "dimension_id")] {
                let pairs = try await w.query(
                    """
                    SELECT s.key, f.fact FROM \(source) s CROSS JOIN LATERAL unnest(s.fact_ids) AS f(fact)
                    WHERE s.fact_ids && \(readyIDs)::text[] AND f.fact IN (SELECT unnest(\(readyIDs)::text[]))
                    """
                ).rows.map { row throws(KTDBError) in (GraphKeys.id(forKey: try row.decode(0, as: String.self)).postgresText, try row.decode(1, as: String.self)) }
                guard !pairs.isEmpty else { continue }
                try await t.query(
                    """
                    INSERT INTO \(junction) (\(unsafeRaw: owner), fact_id) SELECT p.o, p.f FROM unnest(\(pairs.map(\.0))::uuid[], \(pairs.map(\.1))::uuid[]) AS p(o, f)
                    WHERE EXISTS (SELECT 1 FROM \(owners) WHERE id = p.o) ON CONFLICT DO NOTHING
                    """)
            }
        }
        for id in pending { outcomes[keyOfID[id]!] = .deferred("fact is not ready (dedup pending)") }
        return outcomes
    }
}

extension TableSyncer {
    /// `write_facts` → graph-db.
    static let facts = TableSyncer(table: .facts, keyColumn: "id::text") { engine, keys, w, t, touched in
        try await engine.applyFacts(keys, w, t, touched: &touched)
    }
}
