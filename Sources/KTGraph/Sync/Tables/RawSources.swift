import Foundation
import KTDB

/// `write_raw_sources` → `raw_sources`; a source new to graph-db brings the fact sources and chunks that cite it.
extension SyncEngine {
    func applyRawSources(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let ids = uuidKeys(keys, &outcomes).ids
        var documents: [String] = [], present: Set<String> = []
        for row in try await w.query(
            """
            SELECT r.id, (to_jsonb(r) - 'contributed_to_public_at' - 'created_at' - 'updated_at' - 'fact_count' - 'prohibited_chunk_count')::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM \(writeDB.rawSources) WHERE id = k.id OFFSET 0) r
            """
        ).rows {
            present.insert(try row.decode(0, as: UUID.self).postgresText)
            documents.append(try row.decode(1, as: String.self))
        }
        let deleted = ids.filter { !present.contains($0) }
        if !deleted.isEmpty { try await t.query("DELETE FROM \(graphDB.rawSources) WHERE id IN (SELECT unnest(\(deleted)::uuid[]))") }
        guard !documents.isEmpty else { return outcomes }
        let before = try await existing(.rawSources, Array(present), t)
        // The counts are graph-db's own (recounted from fact_sources and prohibited_chunks).
        try await t.query(
            """
            INSERT INTO \(graphDB.rawSources) (id, uri, title, raw_content, content_hash, is_full_text, content_type, provider_id, retrieved_at,
                                     provider_metadata, is_super_source, fetch_attempted, fetch_error, access_groups, canonical_url, doi)
            SELECT id, uri, title, raw_content, content_hash, is_full_text, content_type, provider_id, retrieved_at,
                   provider_metadata, is_super_source, fetch_attempted, fetch_error, access_groups, canonical_url, doi
            FROM jsonb_populate_recordset(NULL::\(graphDB.rawSources), \(Self.jsonArray(documents)))
            ON CONFLICT (id) DO UPDATE SET uri = EXCLUDED.uri, title = EXCLUDED.title, raw_content = EXCLUDED.raw_content,
                content_hash = EXCLUDED.content_hash, is_full_text = EXCLUDED.is_full_text, content_type = EXCLUDED.content_type,
                provider_id = EXCLUDED.provider_id, retrieved_at = EXCLUDED.retrieved_at, provider_metadata = EXCLUDED.provider_metadata,
                is_super_source = EXCLUDED.is_super_source, fetch_attempted = EXCLUDED.fetch_attempted, fetch_error = EXCLUDED.fetch_error,
                access_groups = EXCLUDED.access_groups, canonical_url = EXCLUDED.canonical_url, doi = EXCLUDED.doi
            """)
        // Fact sources and chunks citing a source new to graph-db (they waited, or were removed
        // with an earlier incarnation of it).
        let new = present.subtracting(before)
        if !new.isEmpty {
            var factSources: [String] = [], chunks: [String] = []
            for row in try await w.query(
                """
                WITH r AS MATERIALIZED (SELECT id, uri, content_hash FROM \(writeDB.rawSources) WHERE id IN (SELECT unnest(\(Array(new))::uuid[])))
                SELECT 'fact_source', s.id FROM r CROSS JOIN LATERAL (SELECT id FROM \(writeDB.factSources) WHERE raw_source_content_hash = r.content_hash OFFSET 0) s
                UNION SELECT 'fact_source', s.id FROM r CROSS JOIN LATERAL (SELECT id FROM \(writeDB.factSources) WHERE raw_source_uri = r.uri OFFSET 0) s
                UNION SELECT 'chunk', c.id FROM r CROSS JOIN LATERAL (SELECT id FROM \(writeDB.prohibitedChunks) WHERE source_content_hash = r.content_hash OFFSET 0) c
                """
            ).rows {
                let id = try row.decode(1, as: UUID.self).postgresText
                if try row.decode(0, as: String.self) == "chunk" { chunks.append(id) } else { factSources.append(id) }
            }
            if !factSources.isEmpty { _ = try await applyFactSources(factSources, w, t) }
            if !chunks.isEmpty { _ = try await applyProhibitedChunks(chunks, w, t) }
        }
        return outcomes
    }

    /// Recounts `fact_count` and `prohibited_chunk_count` of raw sources (writes changed rows only).
    func refreshSourceCounts(_ ids: Set<UUID>, _ t: PostgresTransaction) async throws {
        guard !ids.isEmpty else { return }
        try await t.query(
            """
            UPDATE \(graphDB.rawSources) r SET fact_count = c.facts, prohibited_chunk_count = c.chunks
            FROM (SELECT k.id, (SELECT count(*) FROM \(graphDB.factSources) WHERE raw_source_id = k.id) AS facts,
                               (SELECT count(*) FROM \(graphDB.prohibitedChunks) WHERE raw_source_id = k.id) AS chunks
                  FROM unnest(\(ids.map(\.postgresText))::uuid[]) AS k(id)) c
            WHERE r.id = c.id AND (r.fact_count, r.prohibited_chunk_count) IS DISTINCT FROM (c.facts, c.chunks)
            """)
    }
}

extension TableSyncer {
    /// `write_raw_sources` → graph-db.
    static let rawSources = TableSyncer(table: .rawSources, keyColumn: "id::text") { engine, keys, w, t, touched in
        try await engine.applyRawSources(keys, w, t)
    }
}
