import Foundation
import KTDB

/// `write_prohibited_chunks` → `prohibited_chunks`.
extension SyncEngine {
    func applyProhibitedChunks(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var documents: [(id: String, source: String?, document: String)] = []
        for row in try await w.query(
            """
            SELECT c.id, r.id, (to_jsonb(c) - 'source_content_hash' - 'fallback_error' - 'updated_at' || jsonb_build_object('raw_source_id', r.id))::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.prohibitedChunks) WHERE id = k.id OFFSET 0) c
            LEFT JOIN LATERAL (SELECT id FROM \(writeDB.rawSources) WHERE content_hash = c.source_content_hash OFFSET 0) r ON true
            """
        ).rows {
            documents.append((try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: UUID?.self)?.postgresText, try row.decode(2, as: String.self)))
        }
        let counted = Set(try await t.query("DELETE FROM \(graphDB.prohibitedChunks) WHERE id IN (SELECT unnest(\(ids)::uuid[])) RETURNING raw_source_id").uuids(0))
        let sources = try await existing(.rawSources, documents.compactMap(\.source), t)
        let (readyChunks, waiting) = SyncPlan.readiness(documents) { [SyncPlan.Need(id: $0.source, present: sources, reason: "the chunk's raw source is not in graph-db yet")] }
        for (chunk, reason) in waiting { outcomes[keyOfID[chunk.id]!] = .deferred(reason) }
        let ready = readyChunks.map(\.document), readySources = Set(readyChunks.compactMap { $0.source.flatMap(UUID.init(uuidString:)) })
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO \(graphDB.prohibitedChunks) (id, raw_source_id, chunk_text, model_id, fallback_model_id, error_message, created_at)
                SELECT id, raw_source_id, chunk_text, model_id, fallback_model_id, error_message, created_at
                FROM jsonb_populate_recordset(NULL::\(graphDB.prohibitedChunks), \(Self.jsonArray(ready)))
                """)
        }
        try await refreshSourceCounts(counted.union(readySources), t)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_prohibited_chunks` → graph-db.
    static let prohibitedChunks = TableSyncer(table: .prohibitedChunks, keyColumn: "id::text") { engine, keys, w, t, touched in
        try await engine.applyProhibitedChunks(keys, w, t)
    }
}
