public import Foundation
import KTDB
import KTQdrant

/// Node updates, vectors, and the searches of `WorkerGraphEngine` that combine facts and nodes.
extension WorkerGraphEngine {
    /// Updates a node's descriptive fields; `nil` keeps a value. The concept is the node's key
    /// and cannot change here.
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node.
    @discardableResult
    public func updateNode(
        id: UUID, definition: String? = nil, attractor: String? = nil, filterID: String? = nil, maxContentTokens: Int? = nil,
        enrichmentStatus: String? = nil, visibility: String? = nil, staleAfter: Int? = nil
    ) async throws -> GraphNode {
        if let maxContentTokens, maxContentTokens <= 0 { throw KTGraphError(code: .invalidArgument, message: "max content tokens must be positive") }
        if let staleAfter, staleAfter <= 0 { throw KTGraphError(code: .invalidArgument, message: "stale-after days must be positive") }
        let updated = try await run("""
            UPDATE write_nodes SET definition = COALESCE(\(definition), definition), attractor = COALESCE(\(attractor), attractor),
                filter_id = COALESCE(\(filterID), filter_id), max_content_tokens = COALESCE(\(maxContentTokens), max_content_tokens),
                enrichment_status = COALESCE(\(enrichmentStatus), enrichment_status), visibility = COALESCE(\(visibility), visibility),
                stale_after = COALESCE(\(staleAfter), stale_after), updated_at = clock_timestamp()
            WHERE node_uuid = \(id) RETURNING key
            """)
        guard updated.first != nil, let node = try await node(id: id) else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return node
    }

    /// Upserts a node's Qdrant point with `embedding` (payload `concept`, `node_type`);
    /// Qdrant failures are logged, not thrown (write-db stays the truth).
    public func upsertNodeVector(_ node: GraphNode, embedding: [Float]) async {
        await upsertNodePoint(node, embedding: embedding)
    }

    /// Upserts facts' Qdrant points with their embeddings (payload `content`, `fact_type`,
    /// `node_ids`); Qdrant failures are logged, not thrown.
    public func upsertFactVectors(_ items: [(fact: GraphFact, embedding: [Float])]) async {
        await upsertFactPoints(items.map(\.fact), embeddings: items.map(\.embedding))
    }

    /// A node's facts with the sources they were found in.
    public func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] {
        let facts = try await nodeFacts(of: nodeID)
        let sources = Dictionary(grouping: try await factSources(of: facts.map(\.id)), by: \.factID)
        return facts.map { FactWithSources(fact: $0, sources: sources[$0.id] ?? []) }
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    public func searchFactPoolTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.trigram(text, threshold: threshold, limit: limit, in: Self.writeFacts)))
    }

    /// Facts containing `text`, leaving out the facts rejected for `nodeID`.
    public func searchFactPoolText(_ text: String, excludingRejectedFor nodeID: UUID, limit: Int = 30) async throws -> [GraphFact] {
        try await run("""
            SELECT f.id, f.content, f.fact_type, f.created_at FROM write_facts f
            WHERE f.content ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\'
              AND NOT EXISTS (SELECT 1 FROM write_node_fact_rejections r WHERE r.node_id = \(nodeID) AND r.fact_id = f.id)
            ORDER BY f.created_at DESC, f.id LIMIT \(limit)
            """).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    public func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] {
        let counts = try await run("""
            SELECT o.node_uuid, count(*) AS shared FROM write_nodes n JOIN write_nodes o ON o.fact_ids && n.fact_ids AND o.key <> n.key
            CROSS JOIN LATERAL unnest(o.fact_ids) AS f(fact) WHERE n.node_uuid = \(nodeID) AND f.fact = ANY(n.fact_ids)
            GROUP BY o.node_uuid ORDER BY shared DESC, o.node_uuid LIMIT \(limit)
            """).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self), try row.decode(1, as: Int.self)) }
        return try await withCounts(counts)
    }

    /// For each embedding, the nearest facts in Qdrant (20, score ≥ `threshold`); returns the
    /// nodes linking most of those facts, `excluding` one node.
    public func findNodesWithSimilarFacts(factEmbeddings: [[Float]], excluding nodeID: UUID? = nil, threshold: Double = 0.4, limit: Int = 10) async throws -> [NodeWithCount] {
        guard let qdrant, !factEmbeddings.isEmpty else { return [] }
        var factIDs: Set<String> = []
        for embedding in factEmbeddings {
            for hit in try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: 20, scoreThreshold: threshold)) {
                if let id = hit.uuid { factIDs.insert(id.postgresText) }
            }
        }
        guard !factIDs.isEmpty else { return [] }
        let counts = try await run("""
            SELECT n.node_uuid, count(*) AS hits FROM write_nodes n CROSS JOIN LATERAL unnest(n.fact_ids) AS f(fact)
            WHERE n.fact_ids && \(Array(factIDs))::text[] AND f.fact = ANY(\(Array(factIDs))::text[]) AND (\(nodeID)::uuid IS NULL OR n.node_uuid <> \(nodeID))
            GROUP BY n.node_uuid ORDER BY hits DESC, n.node_uuid LIMIT \(limit)
            """).rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self), try row.decode(1, as: Int.self)) }
        return try await withCounts(counts)
    }

    private func withCounts(_ counts: [(UUID, Int)]) async throws -> [NodeWithCount] {
        let nodes = Dictionary(try await nodes(ids: counts.map(\.0)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return counts.compactMap { id, count in nodes[id].map { NodeWithCount(node: $0, count: count) } }
    }
}
