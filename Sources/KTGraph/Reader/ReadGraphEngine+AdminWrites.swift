public import Foundation

/// The administration writes the API makes in graph-db directly: nodes, edges and facts created, changed, merged or deleted.
extension ReadGraphEngine {
    /// Creates a node directly in graph-db (admin); the id is `key_to_uuid(slug(concept))`.
    @discardableResult
    public func createNode(concept: String, nodeType: NodeType = .concept, definition: String? = nil, parentID: UUID? = nil) async throws -> GraphNode {
        try await adminStore.createNode(concept: concept, nodeType: nodeType, definition: definition, parentID: parentID)
    }

    /// Updates a node's concept text and definition (admin); `nil` keeps a value.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    @discardableResult
    public func updateNode(id: UUID, concept: String? = nil, definition: String? = nil) async throws -> GraphNode { try await adminStore.updateNode(id: id, concept: concept, definition: definition) }

    /// Deletes a node (admin); edges, links and dimensions go with it.
    public func deleteNode(id: UUID) async throws -> Bool { try await adminStore.deleteNode(id: id) }

    /// Creates an edge directly in graph-db (admin); undirected types are stored with the smaller id first.
    @discardableResult
    public func createEdge(sourceID: UUID, targetID: UUID, relationshipType: RelationshipType = .related, weight: Double = 0.5) async throws -> GraphEdge {
        try await adminStore.createEdge(sourceID: sourceID, targetID: targetID, relationshipType: relationshipType, weight: weight)
    }

    /// Deletes an edge (admin).
    public func deleteEdge(id: UUID) async throws -> Bool { try await adminStore.deleteEdge(id: id) }

    /// Merges `absorb` into `keep` under transaction-level advisory locks on both ids (taken in
    /// sorted order, so concurrent merges cannot deadlock): facts, edges (weights averaged when
    /// `keep` already has the edge, self-loops dropped, edge facts copied), dimensions and
    /// children move to `keep`; `absorb` is deleted. Returns the kept node.
    @discardableResult
    public func mergeNodes(keep: UUID, absorb: UUID) async throws -> GraphNode { try await adminStore.mergeNodes(keep: keep, absorb: absorb) }

    /// Updates a fact's content and type (admin); `nil` keeps a value.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    @discardableResult
    public func updateFact(id: UUID, content: String? = nil, factType: FactType? = nil) async throws -> GraphFact { try await adminStore.updateFact(id: id, content: content, factType: factType) }

    /// Deletes a fact (admin); its links go with it and the counters of its nodes follow.
    public func deleteFact(id: UUID) async throws -> Bool { try await adminStore.deleteFact(id: id) }

    /// Links a fact to a node with a relevance and a stance (admin; `supports`, `challenges`,
    /// `neutral` or another label).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when the node or the fact is missing.
    public func linkFactToNode(nodeID: UUID, factID: UUID, relevance: Double = 1.0, stance: String? = nil) async throws {
        try await adminStore.linkFactToNode(nodeID: nodeID, factID: factID, relevance: relevance, stance: stance)
    }
}
