import Foundation
import KTDB

/// The set-based sync of raw sources, fact sources, prohibited chunks, convergence reports and
/// node versions (the same contract as the other tables: applying a key makes graph-db match
/// the current write-db state of that key; a row whose parent has not arrived is deferred).
///
/// No "phantom" sources: the original stubbed a raw source for a fact source whose source row
/// was missing; here such a fact source waits (deferred) until its raw source arrives, and a
/// raw source new to graph-db brings the fact sources and chunks that cite it.
extension SyncEngine {
    /// Parses UUID keys (the others fail): the distinct ids as lower-case text, and the key of each id.
    func uuidKeys(_ keys: [String], _ outcomes: inout Outcomes) -> (ids: [String], keyOfID: [String: String]) {
        var ids: [String] = [], keyOfID: [String: String] = [:]
        for key in keys {
            if let id = UUID(uuidString: key)?.postgresText {
                if keyOfID.updateValue(key, forKey: id) == nil { ids.append(id) }
            } else {
                outcomes[key] = .failed("not a uuid: \(key)")
            }
        }
        return (ids, keyOfID)
    }

    // MARK: Raw sources

    func applyRawSources(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let ids = uuidKeys(keys, &outcomes).ids
        var documents: [String] = [], present: Set<String> = []
        for row in try await w.query(
            """
            SELECT r.id, (to_jsonb(r) - 'contributed_to_public_at' - 'created_at' - 'updated_at' - 'fact_count' - 'prohibited_chunk_count')::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM write_raw_sources WHERE id = k.id OFFSET 0) r
            """
        ).rows {
            present.insert(try row.decode(0, as: UUID.self).postgresText)
            documents.append(try row.decode(1, as: String.self))
        }
        let deleted = ids.filter { !present.contains($0) }
        if !deleted.isEmpty { try await t.query("DELETE FROM raw_sources WHERE id IN (SELECT unnest(\(deleted)::uuid[]))") }
        guard !documents.isEmpty else { return outcomes }
        let before = try await existing("raw_sources", Array(present), t)
        // The counts are graph-db's own (recounted from fact_sources and prohibited_chunks).
        try await t.query(
            """
            INSERT INTO raw_sources (id, uri, title, raw_content, content_hash, is_full_text, content_type, provider_id, retrieved_at,
                                     provider_metadata, is_super_source, fetch_attempted, fetch_error, access_groups, canonical_url, doi)
            SELECT id, uri, title, raw_content, content_hash, is_full_text, content_type, provider_id, retrieved_at,
                   provider_metadata, is_super_source, fetch_attempted, fetch_error, access_groups, canonical_url, doi
            FROM jsonb_populate_recordset(NULL::raw_sources, \(Self.jsonArray(documents)))
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
                WITH r AS MATERIALIZED (SELECT id, uri, content_hash FROM write_raw_sources WHERE id IN (SELECT unnest(\(Array(new))::uuid[])))
                SELECT 'fact_source', s.id FROM r CROSS JOIN LATERAL (SELECT id FROM write_fact_sources WHERE raw_source_content_hash = r.content_hash OFFSET 0) s
                UNION SELECT 'fact_source', s.id FROM r CROSS JOIN LATERAL (SELECT id FROM write_fact_sources WHERE raw_source_uri = r.uri OFFSET 0) s
                UNION SELECT 'chunk', c.id FROM r CROSS JOIN LATERAL (SELECT id FROM write_prohibited_chunks WHERE source_content_hash = r.content_hash OFFSET 0) c
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
    private func refreshSourceCounts(_ ids: Set<UUID>, _ t: PostgresTransaction) async throws {
        guard !ids.isEmpty else { return }
        try await t.query(
            """
            UPDATE raw_sources r SET fact_count = c.facts, prohibited_chunk_count = c.chunks
            FROM (SELECT k.id, (SELECT count(*) FROM fact_sources WHERE raw_source_id = k.id) AS facts,
                               (SELECT count(*) FROM prohibited_chunks WHERE raw_source_id = k.id) AS chunks
                  FROM unnest(\(ids.map(\.postgresText))::uuid[]) AS k(id)) c
            WHERE r.id = c.id AND (r.fact_count, r.prohibited_chunk_count) IS DISTINCT FROM (c.facts, c.chunks)
            """)
    }

    // MARK: Fact sources

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
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM write_fact_sources WHERE id = k.id OFFSET 0) s
            LEFT JOIN LATERAL (SELECT id FROM write_raw_sources WHERE content_hash = s.raw_source_content_hash OFFSET 0) h ON true
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
        let counted = Set(try await t.query("DELETE FROM fact_sources WHERE id IN (SELECT unnest(\(ids)::uuid[])) RETURNING raw_source_id").uuids(0))
        let facts = try await existing("facts", rows.map(\.factId), t), sources = try await existing("raw_sources", rows.map(\.rawSourceId), t)
        var ready: [FactSourceRow] = []
        for row in rows {
            if !facts.contains(row.factId) {
                outcomes[keyOfID[row.id]!] = .deferred("the fact source's fact is not in graph-db yet")
            } else if !sources.contains(row.rawSourceId) {
                outcomes[keyOfID[row.id]!] = .deferred("the fact source's raw source is not in graph-db yet")
            } else {
                ready.append(row)
            }
        }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO fact_sources (id, fact_id, raw_source_id, context_snippet, attribution, author_person, author_org)
                SELECT id, fact_id, raw_source_id, context_snippet, attribution, author_person, author_org
                FROM jsonb_populate_recordset(NULL::fact_sources, \(try Self.json(ready)))
                ON CONFLICT ON CONSTRAINT uq_fact_source DO UPDATE SET context_snippet = EXCLUDED.context_snippet,
                    attribution = EXCLUDED.attribution, author_person = EXCLUDED.author_person, author_org = EXCLUDED.author_org
                """)
        }
        try await refreshSourceCounts(counted.union(ready.compactMap { UUID(uuidString: $0.rawSourceId) }), t)
        return outcomes
    }

    // MARK: Prohibited chunks

    func applyProhibitedChunks(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var documents: [(id: String, source: String?, document: String)] = []
        for row in try await w.query(
            """
            SELECT c.id, r.id, (to_jsonb(c) - 'source_content_hash' - 'fallback_error' - 'updated_at' || jsonb_build_object('raw_source_id', r.id))::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM write_prohibited_chunks WHERE id = k.id OFFSET 0) c
            LEFT JOIN LATERAL (SELECT id FROM write_raw_sources WHERE content_hash = c.source_content_hash OFFSET 0) r ON true
            """
        ).rows {
            documents.append((try row.decode(0, as: UUID.self).postgresText, try row.decode(1, as: UUID?.self)?.postgresText, try row.decode(2, as: String.self)))
        }
        let counted = Set(try await t.query("DELETE FROM prohibited_chunks WHERE id IN (SELECT unnest(\(ids)::uuid[])) RETURNING raw_source_id").uuids(0))
        let sources = try await existing("raw_sources", documents.compactMap(\.source), t)
        var ready: [String] = [], readySources: Set<UUID> = []
        for chunk in documents {
            guard let source = chunk.source, sources.contains(source) else {
                outcomes[keyOfID[chunk.id]!] = .deferred("the chunk's raw source is not in graph-db yet")
                continue
            }
            ready.append(chunk.document)
            if let id = UUID(uuidString: source) { readySources.insert(id) }
        }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO prohibited_chunks (id, raw_source_id, chunk_text, model_id, fallback_model_id, error_message, created_at)
                SELECT id, raw_source_id, chunk_text, model_id, fallback_model_id, error_message, created_at
                FROM jsonb_populate_recordset(NULL::prohibited_chunks, \(Self.jsonArray(ready)))
                """)
        }
        try await refreshSourceCounts(counted.union(readySources), t)
        return outcomes
    }

    // MARK: Convergence reports

    private struct ReportRow: Encodable {
        var id: String, nodeId: String, convergenceScore: Double, convergedClaims: [String]?, recommendedContent: String?, computedAt: String
    }

    func applyConvergenceReports(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        var rows: [ReportRow] = [], keyOfNode: [String: String] = [:]
        for row in try await w.query(
            """
            SELECT c.node_key, c.convergence_score, c.converged_claims, c.recommended_content, c.computed_at
            FROM unnest(\(keys)::text[]) AS k(key) CROSS JOIN LATERAL (SELECT * FROM write_convergence_reports WHERE node_key = k.key OFFSET 0) c
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
        if !deleted.isEmpty { try await t.query("DELETE FROM convergence_reports WHERE node_id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing("nodes", rows.map(\.nodeId), t)
        for row in rows where !nodes.contains(row.nodeId) { outcomes[keyOfNode[row.nodeId]!] = .deferred("the report's node is not in graph-db yet") }
        let ready = rows.filter { nodes.contains($0.nodeId) }
        if !ready.isEmpty {
            try await t.query(
                """
                INSERT INTO convergence_reports (id, node_id, convergence_score, converged_claims, recommended_content, computed_at)
                SELECT id, node_id, convergence_score, converged_claims, recommended_content, computed_at
                FROM jsonb_populate_recordset(NULL::convergence_reports, \(try Self.json(ready)))
                ON CONFLICT (node_id) DO UPDATE SET convergence_score = EXCLUDED.convergence_score, converged_claims = EXCLUDED.converged_claims,
                    recommended_content = EXCLUDED.recommended_content, computed_at = EXCLUDED.computed_at
                """)
        }
        // The node's denormalised score follows its report (NULL without one).
        try await t.query(
            """
            UPDATE nodes n SET convergence_score = c.score
            FROM (SELECT k.id, (SELECT convergence_score FROM convergence_reports WHERE node_id = k.id) AS score
                  FROM unnest(\(deleted + ready.map(\.nodeId))::uuid[]) AS k(id)) c
            WHERE n.id = c.id AND n.convergence_score IS DISTINCT FROM c.score
            """)
        return outcomes
    }

    // MARK: Node versions

    func applyNodeVersions(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, keyOfID) = uuidKeys(keys, &outcomes)
        var present: [String] = [], nodeIDs: [String] = [], documents: [String] = []
        for row in try await w.query(
            """
            SELECT v.id, v.node_key, (to_jsonb(v) - 'node_key' - 'updated_at')::text
            FROM unnest(\(ids)::uuid[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM write_node_versions WHERE id = k.id OFFSET 0) v
            """
        ).rows {
            present.append(try row.decode(0, as: UUID.self).postgresText)
            nodeIDs.append(GraphKeys.id(forKey: try row.decode(1, as: String.self)).postgresText)
            documents.append(try row.decode(2, as: String.self))
        }
        let presentSet = Set(present)
        let deleted = ids.filter { !presentSet.contains($0) }
        if !deleted.isEmpty { try await t.query("DELETE FROM node_versions WHERE id IN (SELECT unnest(\(deleted)::uuid[]))") }
        let nodes = try await existing("nodes", nodeIDs, t)
        var readyIDs: [String] = [], readyNodes: [String] = [], ready: [String] = []
        for (index, id) in present.enumerated() {
            guard nodes.contains(nodeIDs[index]) else {
                outcomes[keyOfID[id]!] = .deferred("the version's node is not in graph-db yet")
                continue
            }
            readyIDs.append(id)
            readyNodes.append(nodeIDs[index])
            ready.append(documents[index])
        }
        guard !ready.isEmpty else { return outcomes }
        let document = Self.jsonArray(ready)
        // A version number re-used by a new row replaces the old row.
        try await t.query(
            """
            DELETE FROM node_versions v USING (SELECT r.id, k.node_id, r.version_number
                FROM jsonb_populate_recordset(NULL::node_versions, \(document)) AS r
                JOIN unnest(\(readyIDs)::uuid[], \(readyNodes)::uuid[]) AS k(id, node_id) ON k.id = r.id) b
            WHERE v.node_id = b.node_id AND v.version_number = b.version_number AND v.id <> b.id
            """)
        try await t.query(
            """
            INSERT INTO node_versions (id, node_id, version_number, snapshot, source_node_count, is_default, created_at)
            SELECT r.id, k.node_id, r.version_number, r.snapshot, r.source_node_count, r.is_default, r.created_at
            FROM jsonb_populate_recordset(NULL::node_versions, \(document)) AS r
            JOIN unnest(\(readyIDs)::uuid[], \(readyNodes)::uuid[]) AS k(id, node_id) ON k.id = r.id
            ON CONFLICT (id) DO UPDATE SET node_id = EXCLUDED.node_id, version_number = EXCLUDED.version_number, snapshot = EXCLUDED.snapshot,
                source_node_count = EXCLUDED.source_node_count, is_default = EXCLUDED.is_default
            """)
        return outcomes
    }
}
