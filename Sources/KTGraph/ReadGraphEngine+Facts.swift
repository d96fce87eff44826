public import Foundation
import KTDB
import KTQdrant
import Logging

/// Facts and dimensions in graph-db and Qdrant.
extension ReadGraphEngine {
    // MARK: Facts and dimensions

    /// Facts linked to a node.
    public func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] {
        try await nodeFacts(of: nodeID, offset: 0, limit: nil)
    }

    /// Facts by id (missing ones left out).
    public func facts(ids: [UUID]) async throws -> [GraphFact] {
        guard !ids.isEmpty else { return [] }
        return try FactQueries.facts(try await run(FactQueries.byIDs(ids, in: table.facts)))
    }

    /// Nodes a fact is linked to.
    public func factNodes(of factID: UUID) async throws -> [GraphNode] {
        try await nodes("WHERE id IN (SELECT node_id FROM \(table.nodeFacts) WHERE fact_id = \(factID)) ORDER BY concept")
    }

    /// Facts whose content contains `text` (case-insensitive).
    public func searchFactsText(_ text: String, limit: Int = 30, factType: FactType? = nil) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.containing(text, factType: factType, limit: limit, in: table.facts)))
    }

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from graph-db in Qdrant's order.
    /// `excluding` leaves facts out in Qdrant (the limit counts the facts returned).
    public func searchFacts(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        return try await load(try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter)))
    }

    /// Hybrid search: Qdrant fuses a vector prefetch and a full-text-filtered prefetch with RRF;
    /// on a Qdrant error it falls back to the vector search.
    public func hybridSearchFacts(query text: String, embedding: [Float], limit: Int = 30) async throws -> [ScoredFact] {
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
        let found = Dictionary(try await facts(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { hit in hit.uuid.flatMap { found[$0] }.map { ScoredFact(fact: $0, score: hit.score) } }
    }

    /// Dimensions of a node with their fact ids.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        try await run(
            """
            SELECT d.id, d.node_id, d.model_id, d.content, d.confidence, d.batch_index,
                   coalesce((SELECT array_agg(df.fact_id::text ORDER BY df.fact_id) FROM \(table.dimensionFacts) df WHERE df.dimension_id = d.id), '{}') AS fact_ids
            FROM \(table.dimensions) d WHERE d.node_id = \(nodeID) ORDER BY d.model_id, d.batch_index
            """
        ).rows.map { row throws(KTDBError) in
            GraphDimension(
                id: try row.decode("id", as: UUID.self), nodeID: try row.decode("node_id", as: UUID.self), modelID: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                batchIndex: try row.decode("batch_index", as: Int.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
        }
    }
}
