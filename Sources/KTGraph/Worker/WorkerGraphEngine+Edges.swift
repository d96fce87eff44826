public import Foundation

/// A graph's edges in write-db.
extension WorkerGraphEngine {
    /// Creates or updates the edge `type(source, target)` (key order-insensitive for undirected types).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when either node is missing.
    @discardableResult
    public func createEdge(sourceID: UUID, targetID: UUID, relationshipType: RelationshipType = .related, weight: Double = 0.5, justification: String? = nil, factIDs: [UUID] = []) async throws
        -> GraphEdge
    { try await edgeStore.createEdge(sourceID: sourceID, targetID: targetID, relationshipType: relationshipType, weight: weight, justification: justification, factIDs: factIDs) }

    /// Adds a fact to an edge's `fact_ids`.
    public func linkFactToEdge(_ edge: GraphEdge, factID: UUID) async throws { try await edgeStore.linkFactToEdge(edge, factID: factID) }

    /// Deletes an edge in write-db (the sync deletes it in graph-db).
    public func deleteEdge(_ edge: GraphEdge) async throws { try await edgeStore.deleteEdge(edge) }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] { try await edgeStore.edges(of: nodeID, direction: direction) }

    /// Of `candidates`, the nodes that already have an edge with `nodeID` (either direction,
    /// any type) updated within the last `stalenessDays` days.
    public func recentEdgePairs(nodeID: UUID, candidates: [UUID], stalenessDays: Int = 30) async throws -> Set<UUID> {
        try await edgeStore.recentEdgePairs(nodeID: nodeID, candidates: candidates, stalenessDays: stalenessDays)
    }
}
