public import Foundation

/// Fact searches in graph-db and Qdrant, and the nodes found through facts.
extension ReadGraphEngine {
    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    public func searchFacts(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await factSearch.searchFacts(embedding: embedding, excludingRejectedFor: nodeID, limit: limit, threshold: threshold)
    }

    /// For each embedding, the nearest facts in Qdrant (20, score ≥ `threshold`); returns the
    /// nodes linking most of those facts, `excluding` one node.
    public func findNodesWithSimilarFacts(factEmbeddings: [[Float]], excluding nodeID: UUID? = nil, threshold: Double = 0.4, limit: Int = 10) async throws -> [NodeWithCount] {
        try await factSearch.findNodesWithSimilarFacts(factEmbeddings: factEmbeddings, excluding: nodeID, threshold: threshold, limit: limit)
    }

    /// The facts near `embedding` in Qdrant (100, score ≥ `threshold`) that `sourceNodeID` does
    /// not already link; returns the other nodes linking most of them.
    public func findNodesByEmbeddingFacts(embedding: [Float], sourceNodeID: UUID, threshold: Double = 0.45, nodeLimit: Int = 15) async throws -> [NodeWithCount] {
        try await factSearch.findNodesByEmbeddingFacts(embedding: embedding, sourceNodeID: sourceNodeID, threshold: threshold, nodeLimit: nodeLimit)
    }

    /// Facts whose content contains `text` (case-insensitive).
    public func searchFactsText(_ text: String, limit: Int = 30, factType: FactType? = nil) async throws -> [GraphFact] { try await factSearch.searchFactsText(text, limit: limit, factType: factType) }

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from graph-db in Qdrant's order.
    /// `excluding` leaves facts out in Qdrant (the limit counts the facts returned).
    public func searchFacts(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        try await factSearch.searchFacts(embedding: embedding, limit: limit, threshold: threshold, excluding: excluding)
    }

    /// Hybrid search: Qdrant fuses a vector prefetch and a full-text-filtered prefetch with RRF;
    /// on a Qdrant error it falls back to the vector search.
    public func hybridSearchFacts(query text: String, embedding: [Float], limit: Int = 30) async throws -> [ScoredFact] {
        try await factSearch.hybridSearchFacts(query: text, embedding: embedding, limit: limit)
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    public func searchFactsTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try await factSearch.searchFactsTrigram(text, threshold: threshold, limit: limit)
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    public func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] { try await factSearch.findNodesSharingFacts(with: nodeID, limit: limit) }
}
