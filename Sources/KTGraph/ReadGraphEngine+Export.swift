public import Foundation
import KTDB
import KTQdrant

/// Whole-graph pages for export, batch neighbourhoods, and the searches that combine Qdrant
/// with `node_facts`.
extension ReadGraphEngine {
    // MARK: Export

    /// Nodes by id, `limit` at a time: pass the last id of a page as `after` for the next
    /// (`list_all_nodes`, without holding the whole graph in memory).
    public func exportNodes(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphNode] {
        try Self.checkPage(limit)
        return try await nodes("WHERE (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)")
    }

    /// Edges by id, a page at a time (see ``exportNodes(after:limit:)``).
    public func exportEdges(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphEdge] {
        try Self.checkPage(limit)
        return try await edges("WHERE (\(after)::uuid IS NULL OR e.id > \(after)) ORDER BY e.id LIMIT \(limit)")
    }

    /// Facts by id with their sources, a page at a time (see ``exportNodes(after:limit:)``).
    public func exportFactsWithSources(after: UUID? = nil, limit: Int = 1000) async throws -> [FactWithSources] {
        try Self.checkPage(limit)
        let facts = try FactQueries.facts(
            try await run(
                """
                SELECT \(unsafeRaw: FactQueries.columns) FROM \(table.facts) WHERE (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
                """))
        return try await withSources(facts)
    }

    private static func checkPage(_ limit: Int) throws(KTGraphError) {
        guard (1...10_000).contains(limit) else { throw KTGraphError(code: .invalidArgument, message: "a page holds 1 to 10000 rows") }
    }

    // MARK: Neighbourhoods

    /// How many children a node has.
    public func countChildren(of parentID: UUID) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.nodes) WHERE parent_id = \(parentID)").first?.decode(0, as: Int.self) ?? 0
    }

    /// For each of `nodeIDs`, its neighbours with their concept and the edge between them, in
    /// two statements (`batch_get_neighbors_with_concepts`). Nodes without edges map to `[]`.
    public func neighborsWithConcepts(of nodeIDs: [UUID]) async throws -> [UUID: [NeighborWithConcept]] {
        var result = Dictionary(nodeIDs.map { ($0, [NeighborWithConcept]()) }, uniquingKeysWith: { a, _ in a })
        guard !nodeIDs.isEmpty else { return result }
        let list = nodeIDs.map(\.uuidString)
        let edges = try await edges(
            """
            WHERE e.source_node_id = ANY(\(list)::uuid[]) OR e.target_node_id = ANY(\(list)::uuid[]) ORDER BY e.weight DESC, e.id
            """)
        let others = Set(edges.flatMap { [$0.sourceID, $0.targetID] })
        let concepts = Dictionary(try await nodes(ids: Array(others)).map { ($0.id, $0.concept) }, uniquingKeysWith: { a, _ in a })
        for edge in edges {
            for (me, other) in [(edge.sourceID, edge.targetID), (edge.targetID, edge.sourceID)] where result[me] != nil && me != other {
                guard let concept = concepts[other] else { continue }
                result[me]?.append(NeighborWithConcept(neighborID: other, concept: concept, edge: edge))
            }
        }
        return result
    }

    // MARK: Searches over facts

    /// Facts near `embedding` in Qdrant, leaving out the facts rejected for `nodeID`.
    public func searchFacts(embedding: [Float], excludingRejectedFor nodeID: UUID, limit: Int = 30, threshold: Double = 0.5) async throws -> [ScoredFact] {
        try await searchFacts(embedding: embedding, limit: limit, threshold: threshold, excluding: try await rejectedFactIDs(nodeID: nodeID))
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
}
