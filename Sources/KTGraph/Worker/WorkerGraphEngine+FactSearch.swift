public import Foundation

/// The fact pool's searches in write-db and Qdrant, and the nodes found through facts.
extension WorkerGraphEngine {
    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from write-db in Qdrant's order.
    public func searchFactPool(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        try await factSearch.searchFactPool(embedding: embedding, limit: limit, threshold: threshold, excluding: excluding)
    }

    /// Facts whose content contains `text` (case-insensitive), newest first.
    public func searchFactPoolText(_ text: String, limit: Int = 30) async throws -> [GraphFact] { try await factSearch.searchFactPoolText(text, limit: limit) }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    public func searchFactPoolTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try await factSearch.searchFactPoolTrigram(text, threshold: threshold, limit: limit)
    }

    /// Facts containing `text`, leaving out the facts rejected for `nodeID`.
    public func searchFactPoolText(_ text: String, excludingRejectedFor nodeID: UUID, limit: Int = 30) async throws -> [GraphFact] {
        try await factSearch.searchFactPoolText(text, excludingRejectedFor: nodeID, limit: limit)
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    public func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] { try await factSearch.findNodesSharingFacts(with: nodeID, limit: limit) }

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

    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    public func searchFactPool(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await factSearch.searchFactPool(embedding: embedding, excludingRejectedFor: nodeID, limit: limit, threshold: threshold)
    }
}
