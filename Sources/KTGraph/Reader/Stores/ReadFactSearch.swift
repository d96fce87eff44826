import Foundation
import KTDB
import KTQdrant
import Logging

/// Fact searches in graph-db and Qdrant, and the nodes found through facts.
struct ReadFactSearch: ReaderStore {
    let context: ReaderContext

    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    func searchFacts(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await searchFacts(embedding: embedding, limit: limit, threshold: threshold, excluding: try await factStore.rejectedFactIDs(nodeID: nodeID))
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
        let linked = { Set(try await run("SELECT fact_id FROM \(table.nodeFacts) WHERE node_id = \(sourceNodeID)").uuids(0)) }
        return try await FactVectors.nodes(near: [embedding], qdrant: qdrant, collection: collections.facts, limit: 100, threshold: threshold, excluding: linked) {
            try await nodesLinking($0, excluding: sourceNodeID, limit: nodeLimit)
        }
    }

    private func nodesLinking(_ factIDs: [UUID], excluding excluded: UUID?, limit: Int) async throws -> [NodeWithCount] {
        guard !factIDs.isEmpty else { return [] }
        return try await withCounts(
            """
            SELECT node_id, count(*) AS hits FROM \(table.nodeFacts)
            WHERE fact_id = ANY(\(factIDs.map(\.uuidString))::uuid[]) AND (\(excluded)::uuid IS NULL OR node_id <> \(excluded))
            GROUP BY node_id ORDER BY hits DESC, node_id LIMIT \(limit)
            """)
    }

    /// Facts whose content contains `text` (case-insensitive).
    func searchFactsText(_ text: String, limit: Int = 30, factType: FactType? = nil) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.containing(text, factType: factType, limit: limit, in: table.facts)))
    }

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from graph-db in Qdrant's order.
    func searchFacts(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        return try await load(try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter)))
    }

    /// Hybrid search: Qdrant fuses a vector prefetch and a full-text-filtered prefetch with RRF; on a
    /// Qdrant error it falls back to the vector search.
    func hybridSearchFacts(query text: String, embedding: [Float], limit: Int = 30) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        do {
            let hits = try await qdrant.hybridQuery(
                collections.facts,
                prefetch: [
                    QdrantPrefetch(vector: embedding, limit: limit * 2),
                    QdrantPrefetch(vector: embedding, filter: QdrantFilter(must: [.matchText("content", text)]), limit: limit * 2),
                ], limit: limit)
            return try await load(hits)
        } catch {
            logger.debug("hybrid search failed; falling back to vector search", metadata: ["kt.error": "\(error)"])
            return try await searchFacts(embedding: embedding, limit: limit, threshold: 0)
        }
    }

    func load(_ hits: [QdrantScoredPoint]) async throws -> [ScoredFact] {
        let found = Dictionary(try await factStore.facts(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { hit in hit.uuid.flatMap { found[$0] }.map { ScoredFact(fact: $0, score: hit.score) } }
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    func searchFactsTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.trigram(text, threshold: threshold, limit: limit, in: table.facts)))
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] {
        return try await withCounts(
            """
            SELECT o.node_id, count(*) AS shared FROM \(table.nodeFacts) n JOIN \(table.nodeFacts) o ON o.fact_id = n.fact_id AND o.node_id <> n.node_id
            WHERE n.node_id = \(nodeID) GROUP BY o.node_id ORDER BY shared DESC, o.node_id LIMIT \(limit)
            """)
    }

    /// The nodes of a query's (node id, count) rows, in row order (missing nodes left out).
    func withCounts(_ query: PostgresQuery) async throws -> [NodeWithCount] {
        let counts = try await run(query).idCounts()
        return NodeWithCount.pairing(counts, with: try await nodeStore.nodes(ids: counts.map(\.0)))
    }
}
