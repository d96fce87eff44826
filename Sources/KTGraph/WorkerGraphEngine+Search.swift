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
        let updated = try await run(
            """
            UPDATE \(table.nodes) SET definition = COALESCE(\(definition), definition), attractor = COALESCE(\(attractor), attractor),
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
        try FactQueries.facts(try await run(FactQueries.trigram(text, threshold: threshold, limit: limit, in: table.facts)))
    }

    /// Facts containing `text`, leaving out the facts rejected for `nodeID`.
    public func searchFactPoolText(_ text: String, excludingRejectedFor nodeID: UUID, limit: Int = 30) async throws -> [GraphFact] {
        try await run(
            """
            SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.facts) f
            WHERE f.content ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\'
              AND NOT EXISTS (SELECT 1 FROM \(table.nodeFactRejections) r WHERE r.node_id = \(nodeID) AND r.fact_id = f.id)
            ORDER BY f.created_at DESC, f.id LIMIT \(limit)
            """
        ).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    public func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] {
        return try await withCounts(
            """
            SELECT o.node_uuid, count(*) AS shared FROM \(table.nodes) n JOIN \(table.nodes) o ON o.fact_ids && n.fact_ids AND o.key <> n.key
            CROSS JOIN LATERAL unnest(o.fact_ids) AS f(fact) WHERE n.node_uuid = \(nodeID) AND f.fact = ANY(n.fact_ids)
            GROUP BY o.node_uuid ORDER BY shared DESC, o.node_uuid LIMIT \(limit)
            """)
    }

    /// For each embedding, the nearest facts in Qdrant (20, score ≥ `threshold`); returns the
    /// nodes linking most of those facts, `excluding` one node.
    public func findNodesWithSimilarFacts(factEmbeddings: [[Float]], excluding nodeID: UUID? = nil, threshold: Double = 0.4, limit: Int = 10) async throws -> [NodeWithCount] {
        try await FactVectors.nodes(near: factEmbeddings, qdrant: qdrant, collection: collections.facts, limit: 20, threshold: threshold) {
            try await nodesLinking($0, excluding: nodeID, limit: limit)
        }
    }

    /// The facts near `embedding` in Qdrant (100, score ≥ `threshold`) that `sourceNodeID` does
    /// not already link; returns the other nodes linking most of them.
    public func findNodesByEmbeddingFacts(embedding: [Float], sourceNodeID: UUID, threshold: Double = 0.45, nodeLimit: Int = 15) async throws -> [NodeWithCount] {
        let linked = { Set(try await nodeFacts(of: sourceNodeID).map(\.id)) }
        return try await FactVectors.nodes(near: [embedding], qdrant: qdrant, collection: collections.facts, limit: 100, threshold: threshold, excluding: linked) {
            try await nodesLinking($0, excluding: sourceNodeID, limit: nodeLimit)
        }
    }

    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    public func searchFactPool(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await searchFactPool(embedding: embedding, limit: limit, threshold: threshold, excluding: try await rejectedFactIDs(nodeID: nodeID))
    }

    /// Of `candidates`, the nodes that already have an edge with `nodeID` (either direction,
    /// any type) updated within the last `stalenessDays` days.
    public func recentEdgePairs(nodeID: UUID, candidates: [UUID], stalenessDays: Int = 30) async throws -> Set<UUID> {
        guard !candidates.isEmpty else { return [] }
        guard stalenessDays >= 0 else { throw KTGraphError(code: .invalidArgument, message: "staleness days must not be negative") }
        return Set(
            try await run(
                """
                WITH me AS (SELECT key FROM \(table.nodes) WHERE node_uuid = \(nodeID)),
                     c AS (SELECT key, node_uuid FROM \(table.nodes) WHERE node_uuid = ANY(\(candidates.map(\.uuidString))::uuid[]))
                SELECT DISTINCT c.node_uuid FROM me, c, \(table.edges) e
                WHERE ((e.source_node_key = me.key AND e.target_node_key = c.key) OR (e.source_node_key = c.key AND e.target_node_key = me.key))
                  AND e.updated_at > now() - make_interval(days => \(stalenessDays)::int)
                """
            ).uuids(0))
    }

    /// The nodes (other than `excluded`) linking most of `factIDs`, with how many each links.
    private func nodesLinking(_ factIDs: [UUID], excluding excluded: UUID?, limit: Int) async throws -> [NodeWithCount] {
        guard !factIDs.isEmpty else { return [] }
        let ids = factIDs.map(\.postgresText)
        return try await withCounts(
            """
            SELECT n.node_uuid, count(*) AS hits FROM \(table.nodes) n CROSS JOIN LATERAL unnest(n.fact_ids) AS f(fact)
            WHERE n.fact_ids && \(ids)::text[] AND f.fact = ANY(\(ids)::text[]) AND (\(excluded)::uuid IS NULL OR n.node_uuid <> \(excluded))
            GROUP BY n.node_uuid ORDER BY hits DESC, n.node_uuid LIMIT \(limit)
            """)
    }

    /// The nodes of a query's (node id, count) rows, in row order.
    private func withCounts(_ query: PostgresQuery) async throws -> [NodeWithCount] {
        let counts = try await run(query).idCounts()
        return NodeWithCount.pairing(counts, with: try await nodes(ids: counts.map(\.0)))
    }
}
