import Foundation
import KTDB
import KTQdrant
import Logging

/// Where a graph's facts come from, in write-db: raw sources, fact sources, prohibited chunks.
struct WriteSourceStore: WorkerStore {
    let context: WorkerContext

    /// Stores a raw source (id `uri_to_source_id(uri)`), keeping stored values where `source` has none;
    /// returns the stored row.
    @discardableResult
    func upsertRawSource(_ source: GraphRawSource) async throws -> GraphRawSource {
        guard !source.uri.trimmingCharacters(in: .whitespaces).isEmpty, source.uri.unicodeScalars.count <= 2000 else {
            throw KTGraphError(code: .invalidArgument, message: "a raw source needs a URI of 1 to 2000 characters")
        }
        let id = GraphKeys.sourceID(uri: source.uri)
        do {
            let row = try await run(
                """
                INSERT INTO \(table.rawSources) AS r (id, uri, title, raw_content, content_hash, content_type, provider_id, is_full_text, canonical_url, doi,
                                                   retrieved_at, created_at, updated_at)
                VALUES (\(id), \(source.uri), \(source.title), \(source.rawContent), \(source.contentHash), \(source.contentType), \(source.providerID),
                        \(source.isFullText), \(source.canonicalURL), \(source.doi), \(source.retrievedAt), clock_timestamp(), clock_timestamp())
                ON CONFLICT (id) DO UPDATE SET title = COALESCE(EXCLUDED.title, r.title), raw_content = COALESCE(EXCLUDED.raw_content, r.raw_content),
                    content_hash = COALESCE(EXCLUDED.content_hash, r.content_hash), content_type = COALESCE(EXCLUDED.content_type, r.content_type),
                    provider_id = COALESCE(EXCLUDED.provider_id, r.provider_id), is_full_text = EXCLUDED.is_full_text OR r.is_full_text,
                    canonical_url = COALESCE(EXCLUDED.canonical_url, r.canonical_url), doi = COALESCE(EXCLUDED.doi, r.doi), updated_at = clock_timestamp()
                RETURNING \(unsafeRaw: GraphRawSource.columns)
                """
            ).rows[0]
            return try GraphRawSource(row: row)
        } catch let error as KTDBError where error.sqlState == "23505" {
            throw KTGraphError(code: .invalidArgument, message: "another raw source already has content hash \(source.contentHash ?? "")")
        }
    }

    /// The raw source with `id`, or `nil`.
    func rawSource(id: UUID) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE id = \(id)").first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    /// The raw source with this content hash, or `nil`.
    func rawSource(contentHash: String) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE content_hash = \(contentHash)")
            .first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    /// Deletes a raw source; in graph-db its fact sources and chunks go with it (the write-db rows stay
    /// and return with the source if it is stored again).
    func deleteRawSource(id: UUID) async throws {
        try await run("DELETE FROM \(table.rawSources) WHERE id = \(id)")
    }

    /// Records that a fact was found in `source` (stored with ``upsertRawSource(_:)``).
    @discardableResult
    func addFactSource(
        factID: UUID, source: GraphRawSource, contextSnippet: String? = nil, attribution: String? = nil, authorPerson: String? = nil, authorOrg: String? = nil
    ) async throws -> GraphFactSource {
        let id = GraphKeys.id(forKey: "fact_source:\(factID.postgresText):\(source.id.postgresText)")
        guard
            let row = try await run(
                """
                INSERT INTO \(table.factSources) AS s (id, fact_id, raw_source_uri, raw_source_title, raw_source_content_hash, raw_source_provider_id,
                                                     context_snippet, attribution, author_person, author_org, created_at, updated_at)
                SELECT \(id), f.id, \(source.uri), \(source.title), \(source.contentHash), \(source.providerID), \(contextSnippet), \(attribution),
                       \(authorPerson), \(authorOrg), clock_timestamp(), clock_timestamp()
                FROM \(table.facts) f WHERE f.id = \(factID)
                ON CONFLICT (id) DO UPDATE SET raw_source_title = EXCLUDED.raw_source_title, raw_source_content_hash = EXCLUDED.raw_source_content_hash,
                    raw_source_provider_id = EXCLUDED.raw_source_provider_id, context_snippet = COALESCE(EXCLUDED.context_snippet, s.context_snippet),
                    attribution = COALESCE(EXCLUDED.attribution, s.attribution), author_person = COALESCE(EXCLUDED.author_person, s.author_person),
                    author_org = COALESCE(EXCLUDED.author_org, s.author_org), updated_at = clock_timestamp()
                RETURNING \(unsafeRaw: factSourceColumns)
                """
            ).first
        else { throw KTGraphError(code: .notFound, message: "no fact with id \(factID)") }
        return try Self.factSource(row)
    }

    /// The columns ``factSource(_:)`` reads, for `write_fact_sources AS s`.
    private var factSourceColumns: String {
        """
        s.id, s.fact_id, (SELECT r.id FROM \(table.rawSources) r WHERE r.content_hash = s.raw_source_content_hash) AS by_hash,
        s.raw_source_uri AS uri, s.raw_source_title AS title, s.context_snippet, s.attribution, s.author_person, s.author_org
        """
    }

    /// A fact source as the sync links it: to the raw source with the cited content hash, else
    /// to `uri_to_source_id(uri)`.
    private static func factSource(_ row: PostgresRow) throws(KTDBError) -> GraphFactSource {
        let uri = try row.decode("uri", as: String.self)
        return GraphFactSource(
            id: try row.decode("id", as: UUID.self), factID: try row.decode("fact_id", as: UUID.self),
            rawSourceID: try row.decode("by_hash", as: UUID?.self) ?? GraphKeys.sourceID(uri: uri), uri: uri,
            title: try row.decode("title", as: String?.self), contextSnippet: try row.decode("context_snippet", as: String?.self),
            attribution: try row.decode("attribution", as: String?.self), authorPerson: try row.decode("author_person", as: String?.self),
            authorOrg: try row.decode("author_org", as: String?.self))
    }

    /// A fact's sources, by URI.
    func factSources(of factID: UUID) async throws -> [GraphFactSource] {
        try await factSources(of: [factID])
    }

    /// The sources of several facts, by URI, in one statement.
    func factSources(of factIDs: [UUID]) async throws -> [GraphFactSource] {
        guard !factIDs.isEmpty else { return [] }
        return try await run(
            """
            SELECT \(unsafeRaw: factSourceColumns) FROM \(table.factSources) s
            WHERE s.fact_id = ANY(\(factIDs.map(\.postgresText))::uuid[]) ORDER BY s.raw_source_uri, s.id
            """
        ).rows.map { row throws(KTDBError) in try Self.factSource(row) }
    }

    /// Deletes a fact source.
    func deleteFactSource(id: UUID) async throws {
        try await run("DELETE FROM \(table.factSources) WHERE id = \(id)")
    }

    /// Records a chunk of a source that a model refused to process; returns its id.
    @discardableResult
    func recordProhibitedChunk(
        sourceContentHash: String, chunkText: String, modelID: String? = nil, fallbackModelID: String? = nil, errorMessage: String? = nil
    ) async throws -> UUID {
        guard !sourceContentHash.isEmpty, sourceContentHash.unicodeScalars.count <= 64 else {
            throw KTGraphError(code: .invalidArgument, message: "a content hash has 1 to 64 characters")
        }
        let id = UUID()
        try await run(
            """
            INSERT INTO \(table.prohibitedChunks) (id, source_content_hash, chunk_text, model_id, fallback_model_id, error_message, created_at, updated_at)
            VALUES (\(id), \(sourceContentHash), \(chunkText), \(modelID), \(fallbackModelID), \(errorMessage), clock_timestamp(), clock_timestamp())
            """)
        return id
    }
}
