public import Foundation

/// A graph's nodes in write-db: create, update, parents, counters, the node searches.
extension WorkerGraphEngine {
    /// The write-db key of the node with `id`.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    public func nodeKey(id: UUID) async throws -> String { try await nodeStore.nodeKey(id: id) }

    /// Creates or updates the node of `concept` (key `slug(concept)`); `nil` arguments keep stored values.
    /// With an embedding (given, or computed by the embedder) the node's Qdrant point is upserted.
    ///
    /// - Throws: ``KTGraphError/Code/invalidArgument`` for a concept without letters or digits,
    ///   ``KTGraphError/Code/notFound`` for an unknown parent or source concept.
    @discardableResult
    public func createNode(
        concept: String, nodeType: NodeType = .concept, entitySubtype: String? = nil, parentID: UUID? = nil, sourceConceptID: UUID? = nil, definition: String? = nil, embedding: [Float]? = nil
    ) async throws -> GraphNode {
        try await nodeStore.createNode(
            concept: concept, nodeType: nodeType, entitySubtype: entitySubtype, parentID: parentID, sourceConceptID: sourceConceptID, definition: definition, embedding: embedding)
    }

    /// Upserts many nodes in one statement (no parents, no Qdrant points); returns their ids in order.
    @discardableResult
    public func createNodes(_ specs: [NodeSpec]) async throws -> [UUID] { try await nodeStore.createNodes(specs) }

    /// The node with `id`, or `nil`.
    public func node(id: UUID) async throws -> GraphNode? { try await nodeStore.node(id: id) }

    /// The nodes with these ids (missing ones are left out), in no particular order.
    public func nodes(ids: [UUID]) async throws -> [GraphNode] { try await nodeStore.nodes(ids: ids) }

    /// Sets a node's definition.
    @discardableResult
    public func setDefinition(nodeID: UUID, definition: String, source: String = "synthesized") async throws -> GraphNode {
        try await nodeStore.setDefinition(nodeID: nodeID, definition: definition, source: source)
    }

    /// Sets (or with `nil` clears) a node's parent. The chain from the new parent must end at a
    /// root (in ``rootKeys`` when that is not empty) within 50 steps, without a cycle.
    ///
    /// - Throws: ``KTGraphError/Code/invalidParentChain`` for a self-parent, a cycle or a chain too long.
    @discardableResult
    public func setParent(nodeID: UUID, parentID: UUID?) async throws -> GraphNode { try await nodeStore.setParent(nodeID: nodeID, parentID: parentID) }

    /// Whether the node's parent chain reaches a root within `maxDepth` steps without a cycle.
    public func chainReachesRoot(nodeID: UUID, maxDepth: Int = 50) async throws -> Bool { try await nodeStore.chainReachesRoot(nodeID: nodeID, maxDepth: maxDepth) }

    /// Deletes a node in write-db (the sync deletes it in graph-db) and its Qdrant point.
    public func deleteNode(id: UUID) async throws { try await nodeStore.deleteNode(id: id) }

    /// Children of a node.
    public func children(of parentID: UUID) async throws -> [GraphNode] { try await nodeStore.children(of: parentID) }

    /// Perspectives whose source concept is `conceptID`.
    public func perspectives(of conceptID: UUID) async throws -> [GraphNode] { try await nodeStore.perspectives(of: conceptID) }

    /// Case-insensitive substring search on concepts.
    public func searchNodes(_ text: String, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] { try await nodeStore.searchNodes(text, limit: limit, nodeType: nodeType) }

    /// Trigram-similar concepts (pg_trgm), best first.
    public func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodeStore.searchNodesByTrigram(text, threshold: threshold, limit: limit, nodeType: nodeType)
    }

    /// Nodes whose Qdrant vectors are within cosine distance `threshold` of `embedding`, in Qdrant's order.
    public func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodeStore.findSimilarNodes(embedding: embedding, threshold: threshold, limit: limit, nodeType: nodeType)
    }

    /// Counts an access (best effort: a failure is logged, not thrown).
    public func incrementAccessCount(nodeID: UUID) async { await nodeStore.incrementAccessCount(nodeID: nodeID) }

    /// Counts an update (best effort).
    public func incrementUpdateCount(nodeID: UUID) async { await nodeStore.incrementUpdateCount(nodeID: nodeID) }

    /// Updates a node's descriptive fields; `nil` keeps a value. The concept is the node's key
    /// and cannot change here.
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node.
    @discardableResult
    public func updateNode(
        id: UUID, definition: String? = nil, attractor: String? = nil, filterID: String? = nil, maxContentTokens: Int? = nil, enrichmentStatus: String? = nil, visibility: String? = nil,
        staleAfter: Int? = nil
    ) async throws -> GraphNode {
        try await nodeStore.updateNode(
            id: id, definition: definition, attractor: attractor, filterID: filterID, maxContentTokens: maxContentTokens, enrichmentStatus: enrichmentStatus, visibility: visibility,
            staleAfter: staleAfter)
    }
}
