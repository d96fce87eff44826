public import Foundation

/// A graph's edges in graph-db: a node's edges, neighbourhoods, subgraphs, shortest paths, lists.
extension ReadGraphEngine {
    /// A page of a node's edges (heaviest first): at most `limit` from `offset`.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both, offset: Int, limit: Int?) async throws -> [GraphEdge] {
        try await edgeStore.edges(of: nodeID, direction: direction, offset: offset, limit: limit)
    }

    /// ``subgraph(nodeIDs:depth:)`` within bounds: at most `maxNodes` nodes (parents included;
    /// the heaviest edges are followed first) and `maxEdges` edges; every statement is limited
    /// too, so a hub with a million edges costs no more than the bounds.
    public func subgraph(nodeIDs: [UUID], depth: Int, maxNodes: Int, maxEdges: Int) async throws -> BoundedSubgraph {
        try await edgeStore.subgraph(nodeIDs: nodeIDs, depth: depth, maxNodes: maxNodes, maxEdges: maxEdges)
    }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] { try await edgeStore.edges(of: nodeID, direction: direction) }

    /// The edge with `id`, or `nil`.
    public func edge(id: UUID) async throws -> GraphEdge? { try await edgeStore.edge(id: id) }

    /// Nodes within `depth` hops of a node (the node itself excluded), loading edges level by level.
    public func neighbors(of nodeID: UUID, depth: Int = 1, types: [String]? = nil) async throws -> [GraphNode] { try await edgeStore.neighbors(of: nodeID, depth: depth, types: types) }

    /// A subgraph: the given nodes expanded `depth` times by their neighbours, plus the parents
    /// of those nodes, and the edges among them (with their fact ids).
    public func subgraph(nodeIDs: [UUID], depth: Int = 0) async throws -> (nodes: [GraphNode], edges: [GraphEdge]) { try await edgeStore.subgraph(nodeIDs: nodeIDs, depth: depth) }

    /// Shortest paths between two nodes (edges in either direction): breadth-first, level by
    /// level with one edge query per level; stops at the first level that reaches the target.
    public func shortestPaths(from source: UUID, to target: UUID, maxDepth: Int = 6, limit: Int = 5) async throws -> [[PathStep]] {
        try await edgeStore.shortestPaths(from: source, to: target, maxDepth: maxDepth, limit: limit)
    }

    /// For each of `nodeIDs`, its neighbours with their concept and the edge between them, in
    /// two statements (`batch_get_neighbors_with_concepts`). Nodes without edges map to `[]`.
    public func neighborsWithConcepts(of nodeIDs: [UUID]) async throws -> [UUID: [NeighborWithConcept]] { try await edgeStore.neighborsWithConcepts(of: nodeIDs) }

    /// A page of edges (heaviest first), filtered by type and by a node at either end.
    public func listEdges(offset: Int = 0, limit: Int = 20, relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> [GraphEdge] {
        try await edgeStore.listEdges(offset: offset, limit: limit, relationshipType: relationshipType, nodeID: nodeID)
    }

    /// The number of edges matching the filters of ``listEdges(offset:limit:relationshipType:nodeID:)``.
    public func countEdges(relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> Int { try await edgeStore.countEdges(relationshipType: relationshipType, nodeID: nodeID) }

    /// A node's edges with the other node's concept and type, most facts first, a page of them
    /// and the total.
    public func edgesWithTargets(of nodeID: UUID, limit: Int = 50, offset: Int = 0, edgeType: RelationshipType? = nil) async throws -> (edges: [EdgeWithTarget], total: Int) {
        try await edgeStore.edgesWithTargets(of: nodeID, limit: limit, offset: offset, edgeType: edgeType)
    }
}
