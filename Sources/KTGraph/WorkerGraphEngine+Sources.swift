public import Foundation
import KTDB

/// Raw sources, fact sources, prohibited chunks, convergence reports and node versions in
/// write-db. Like every worker write, each call commits at once; the sync copies the rows to
/// graph-db.
extension WorkerGraphEngine {
    // MARK: Raw sources

    /// Stores a raw source (id `uri_to_source_id(uri)`), keeping stored values where `source`
    /// has none; returns the stored row.
    ///
    /// - Throws: ``KTGraphError/Code/invalidArgument`` for an empty URI, or when another source
    ///   already has `contentHash` (the hash is unique in write-db).
    @discardableResult
    public func upsertRawSource(_ source: GraphRawSource) async throws -> GraphRawSource {
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
    public func rawSource(id: UUID) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE id = \(id)").first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    /// The raw source with this content hash, or `nil`.
    public func rawSource(contentHash: String) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE content_hash = \(contentHash)")
            .first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    /// Deletes a raw source; in graph-db its fact sources and chunks go with it (the write-db
    /// rows stay and return with the source if it is stored again).
    public func deleteRawSource(id: UUID) async throws {
        try await run("DELETE FROM \(table.rawSources) WHERE id = \(id)")
    }

    // MARK: Fact sources

    /// Records that a fact was found in `source` (stored with ``upsertRawSource(_:)``). The row's
    /// id follows from the fact and the source, so recording it again updates it.
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when the fact is not in write-db.
    @discardableResult
    public func addFactSource(
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

    /// A fact's sources, by URI. The raw source id is the one the sync links it to (the source
    /// with the cited content hash, else `uri_to_source_id(uri)`).
    public func factSources(of factID: UUID) async throws -> [GraphFactSource] {
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
    public func deleteFactSource(id: UUID) async throws {
        try await run("DELETE FROM \(table.factSources) WHERE id = \(id)")
    }

    // MARK: Prohibited chunks

    /// Records a chunk of a source that a model refused to process; returns its id. The sync
    /// links it to the raw source with `sourceContentHash` (and waits for that source).
    @discardableResult
    public func recordProhibitedChunk(
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

    // MARK: Convergence reports

    /// Stores a node's convergence report (one per node; a new one replaces it).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node;
    ///   ``KTGraphError/Code/invalidArgument`` for a score outside 0...1.
    @discardableResult
    public func setConvergenceReport(nodeID: UUID, score: Double, convergedClaims: [String] = [], recommendedContent: String? = nil) async throws -> GraphConvergenceReport {
        guard (0...1).contains(score) else { throw KTGraphError(code: .invalidArgument, message: "a convergence score is between 0 and 1") }
        let key = try await nodeKey(id: nodeID)
        let row = try await run(
            """
            INSERT INTO \(table.convergenceReports) (node_key, convergence_score, converged_claims, recommended_content, computed_at, updated_at)
            VALUES (\(key), \(score), \(convergedClaims), \(recommendedContent), clock_timestamp(), clock_timestamp())
            ON CONFLICT (node_key) DO UPDATE SET convergence_score = EXCLUDED.convergence_score, converged_claims = EXCLUDED.converged_claims,
                recommended_content = EXCLUDED.recommended_content, computed_at = EXCLUDED.computed_at, updated_at = clock_timestamp()
            RETURNING convergence_score, converged_claims, recommended_content, computed_at
            """
        ).rows[0]
        return try GraphConvergenceReport(row: row, nodeID: nodeID)
    }

    /// A node's convergence report, or `nil`.
    public func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? {
        try await run(
            """
            SELECT c.convergence_score, c.converged_claims, c.recommended_content, c.computed_at
            FROM \(table.nodes) n JOIN \(table.convergenceReports) c ON c.node_key = n.key WHERE n.node_uuid = \(nodeID)
            """
        ).first.map { row throws(KTDBError) in try GraphConvergenceReport(row: row, nodeID: nodeID) }
    }

    // MARK: Versions

    /// Saves a version of a node: number max+1, a snapshot of its concept, definition,
    /// attractor, filter id, max content tokens and fact count. (The original's worker engine
    /// had a no-op here.)
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node.
    @discardableResult
    public func saveVersion(nodeID: UUID, sourceNodeCount: Int = 0, isDefault: Bool = false) async throws -> GraphNodeVersion {
        try await database.withTransaction(logger: logger) { t in
            guard let key = try await t.query("SELECT key FROM \(table.nodes) WHERE node_uuid = \(nodeID) FOR UPDATE").first?.decode(0, as: String.self) else {
                throw KTGraphError(code: .notFound, message: "no node with id \(nodeID)")
            }
            let row = try await t.query(
                """
                INSERT INTO \(table.nodeVersions) (id, node_key, version_number, snapshot, source_node_count, is_default, created_at, updated_at)
                SELECT \(UUID()), n.key, coalesce((SELECT max(version_number) FROM \(table.nodeVersions) WHERE node_key = n.key), 0) + 1,
                       jsonb_build_object('concept', n.concept, 'definition', n.definition, 'attractor', n.attractor, 'filter_id', n.filter_id,
                                          'max_content_tokens', n.max_content_tokens, 'fact_count', cardinality(n.fact_ids)),
                       \(sourceNodeCount), \(isDefault), clock_timestamp(), clock_timestamp()
                FROM \(table.nodes) n WHERE n.key = \(key)
                RETURNING version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at
                """
            ).rows[0]
            return try GraphNodeVersion(row: row, nodeID: nodeID)
        }
    }

    /// A node's versions, oldest first.
    public func history(of nodeID: UUID) async throws -> [GraphNodeVersion] {
        try await run(
            """
            SELECT v.version_number, v.snapshot::text AS snapshot, v.source_node_count, v.is_default, v.created_at
            FROM \(table.nodes) n JOIN \(table.nodeVersions) v ON v.node_key = n.key WHERE n.node_uuid = \(nodeID) ORDER BY v.version_number
            """
        ).rows.map { row throws(KTDBError) in try GraphNodeVersion(row: row, nodeID: nodeID) }
    }
}
