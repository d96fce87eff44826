import Foundation
import KTDB

/// `write_fact_sources` → `fact_sources` (deferred until its raw source arrives: no phantom sources).
extension SyncEngine {
    private struct FactSourceRow: Encodable {
        var id: String, factId: String, rawSourceId: String, contextSnippet: String?, attribution: String?, authorPerson: String?, authorOrg: String?
    }

    func applyFactSources(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var rows: [FactSourceRow] = []
        // The raw source: the write-db row with the cited content hash, else the one whose id
        // follows from the cited URI.
        for row in try await w.query(
            """
            SELECT s.id, s.fact_id, s.raw_source_uri, h.id AS by_hash, s.context_snippet, s.attribution, s.author_person, s.author_org
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.factSources) WHERE id = k.id OFFSET 0) s
            LEFT JOIN LATERAL (SELECT id FROM \(writeDB.rawSources) WHERE content_hash = s.raw_source_content_hash OFFSET 0) h ON true
            """
        ).rows {
            let source = try row.decode("by_hash", as: UUID?.self) ?? GraphKeys.sourceID(uri: try row.decode("raw_source_uri", as: String.self))
            rows.append(
                FactSourceRow(
                    id: try row.decode("id", as: UUID.self).postgresText, factId: try row.decode("fact_id", as: UUID.self).postgresText,
                    rawSourceId: source.postgresText, contextSnippet: try row.decode("context_snippet", as: String?.self),
                    attribution: try row.decode("attribution", as: String?.self), authorPerson: try row.decode("author_person", as: String?.self),
                    authorOrg: try row.decode("author_org", as: String?.self)))
        }
        // Deleted rows go; so do rows whose fact or source changed (re-inserted below).
        let counted = Set(try await t.query("DELETE FROM \(graphDB.factSources) WHERE id IN (SELECT unnest(\(ids)::uuid[])) RETURNING raw_source_id").uuids(0))
        let facts = try await existing(.facts, rows.map(\.factId), t), sources = try await existing(.rawSources, rows.map(\.rawSourceId), t)
        let (ready, waiting) = SyncPlan.readiness(rows) {
            [
                SyncPlan.Need(id: $0.factId, present: facts, reason: "the fact source's fact is not in graph-db yet"),
                SyncPlan.Need(id: $0.rawSourceId, present: sources, reason: "the fact source's raw source is not in graph-db yet"),
            ]
        }
        for (row, reason) in waiting { outcomes[keyOfID[row.id]!] = .deferred(reason) }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO \(graphDB.factSources) (id, fact_id, raw_source_id, context_snippet, attribution, author_person, author_org)
                SELECT id, fact_id, raw_source_id, context_snippet, attribution, author_person, author_org
                FROM jsonb_populate_recordset(NULL::\(graphDB.factSources), \(try Self.json(ready)))
                ON CONFLICT ON CONSTRAINT uq_fact_source DO UPDATE SET context_snippet = EXCLUDED.context_snippet,
                    attribution = EXCLUDED.attribution, author_person = EXCLUDED.author_person, author_org = EXCLUDED.author_org
                """)
        }
        try await refreshSourceCounts(counted.union(ready.compactMap { UUID(uuidString: $0.rawSourceId) }), t)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_fact_sources` → graph-db.
    static let factSources = TableSyncer(table: .factSources, keyColumn: "id::text") { engine, keys, w, t, touched in
        try await engine.applyFactSources(keys, w, t)
    }
}
