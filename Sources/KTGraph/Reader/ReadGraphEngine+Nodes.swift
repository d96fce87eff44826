public import Foundation

/// A graph's nodes in graph-db: lookups, lists, children and perspectives, the node searches.
extension ReadGraphEngine {
    /// The node with `id`, or `nil`.
    public func node(id: UUID) async throws -> GraphNode? { try await nodeStore.node(id: id) }

    /// The nodes with these ids (missing ones left out).
    public func nodes(ids: [UUID]) async throws -> [GraphNode] { try await nodeStore.nodes(ids: ids) }

    /// A page of nodes, filtered by a concept substring and a type.
    public func listNodes(offset: Int = 0, limit: Int = 20, search: String? = nil, nodeType: NodeType? = nil, sort: NodeSort = .updatedAt) async throws -> [GraphNode] {
        try await nodeStore.listNodes(offset: offset, limit: limit, search: search, nodeType: nodeType, sort: sort)
    }

    /// The number of nodes matching the filters of ``listNodes(offset:limit:search:nodeType:sort:)``.
    public func countNodes(search: String? = nil, nodeType: NodeType? = nil) async throws -> Int { try await nodeStore.countNodes(search: search, nodeType: nodeType) }

    /// Children of a node, alphabetical.
    public func children(of parentID: UUID) async throws -> [GraphNode] { try await nodeStore.children(of: parentID) }

    /// Perspectives of a concept.
    public func perspectives(of conceptID: UUID) async throws -> [GraphNode] { try await nodeStore.perspectives(of: conceptID) }

    /// Nodes whose `updated_at` is older than `maxAgeDays`, oldest first.
    public func staleNodes(maxAgeDays: Int = 30, limit: Int = 20) async throws -> [GraphNode] { try await nodeStore.staleNodes(maxAgeDays: maxAgeDays, limit: limit) }

    /// Case-insensitive concept search.
    public func searchNodes(_ text: String, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] { try await nodeStore.searchNodes(text, limit: limit, nodeType: nodeType) }

    /// Trigram-similar concepts, best first (pg_trgm).
    public func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodeStore.searchNodesByTrigram(text, threshold: threshold, limit: limit, nodeType: nodeType)
    }

    /// Nodes near `embedding` in Qdrant, in Qdrant's order.
    public func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodeStore.findSimilarNodes(embedding: embedding, threshold: threshold, limit: limit, nodeType: nodeType)
    }

    /// At most `limit` children of a node, by concept.
    public func children(of parentID: UUID, limit: Int) async throws -> [GraphNode] { try await nodeStore.children(of: parentID, limit: limit) }

    /// How many children a node has.
    public func countChildren(of parentID: UUID) async throws -> Int { try await nodeStore.countChildren(of: parentID) }

    /// How a perspective's facts lean: stances `supports`, `challenges`, `neutral`, other.
    public func perspectiveSummary(of nodeID: UUID) async throws -> PerspectiveSummary { try await nodeStore.perspectiveSummary(of: nodeID) }
}
