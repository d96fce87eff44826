import Foundation
import KTDB
import KTQdrant
import Logging

/// The fact pool's searches in write-db and Qdrant, and the nodes found through facts.
struct WriteFactSearch: WorkerStore {
    let context: WorkerContext

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from write-db in Qdrant's order.
    func searchFactPool(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        let hits = try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter))
        let found = Dictionary(try await factStore.facts(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { hit in hit.uuid.flatMap { found[$0] }.map { ScoredFact(fact: $0, score: hit.score) } }
    }

    /// Facts whose content contains `text` (case-insensitive), newest first.
    func searchFactPoolText(_ text: String, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.containing(text, factType: nil, limit: limit, in: table.facts)))
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    func searchFactPoolTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.trigram(text, threshold: threshold, limit: limit, in: table.facts)))
    }

    /// Facts containing `text`, leaving out the facts rejected for `nodeID`.
    func searchFactPoolText(_ text: String, excludingRejectedFor nodeID: UUID, limit: Int = 30) async throws -> [GraphFact] {
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
    func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] {
        return try await withCounts(
            """
            SELECT o.node_uuid, count(*) AS shared FROM \(table.nodes) n JOIN \(table.nodes) o ON o.fact_ids && n.fact_ids AND o.key <> n.key
            CROSS JOIN LATERAL unnest(o.fact_ids) AS f(fact) WHERE n.node_uuid = \(nodeID) AND f.fact = ANY(n.fact_ids)
            GROUP BY o.node_uuid ORDER BY shared DESC, o.node_uuid LIMIT \(limit)
            """)
    }

    /// For each embedding, the nearest facts in Qdrant (20, score ≥ `threshold`); returns the nodes
    /// linking most of those facts, `excluding` one node.
    func findNodesWithSimilarFacts(factEmbeddings: [[Float]], excluding nodeID: UUID? = nil, threshold: Double = 0.4, limit: Int = 10) async throws -> [NodeWithCount] {
        try await FactVectors.nodes(near: factEmbeddings, qdrant: qdrant, collection: collections.facts, limit: 20, threshold: threshold) {
            try await nodesLinking($0, excluding: nodeID, limit: limit)
        }
    }

    /// The facts near `embedding` in Qdrant (100, score ≥ `threshold`) that `sourceNodeID` does not
    /// already link; returns the other nodes linking most of them.
    func findNodesByEmbeddingFacts(embedding: [Float], sourceNodeID: UUID, threshold: Double = 0.45, nodeLimit: Int = 15) async throws -> [NodeWithCount] {
        let linked = { Set(try await factStore.nodeFacts(of: sourceNodeID).map(\.id)) }
        return try await FactVectors.nodes(near: [embedding], qdrant: qdrant, collection: collections.facts, limit: 100, threshold: threshold, excluding: linked) {
            try await nodesLinking($0, excluding: sourceNodeID, limit: nodeLimit)
        }
    }

    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    func searchFactPool(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await searchFactPool(embedding: embedding, limit: limit, threshold: threshold, excluding: try await factStore.rejectedFactIDs(nodeID: nodeID))
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
        return NodeWithCount.pairing(counts, with: try await nodeStore.nodes(ids: counts.map(\.0)))
    }
}
