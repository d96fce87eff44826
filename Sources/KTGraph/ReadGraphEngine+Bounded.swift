public import Foundation
import KTDB

/// Bounded reads of `ReadGraphEngine`: pages of a node's facts, edges and children, and a
/// subgraph within limits. Every statement is limited, so a hub with a million edges costs no
/// more than the bounds (the example server's routes use these).
extension ReadGraphEngine {
    /// At most `limit` children of a node, by concept.
    public func children(of parentID: UUID, limit: Int) async throws -> [GraphNode] {
        try await nodes("WHERE parent_id = \(parentID) ORDER BY concept LIMIT \(limit)")
    }

    /// A page of a node's edges (heaviest first): at most `limit` from `offset`.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both, offset: Int, limit: Int?) async throws -> [GraphEdge] {
        let page: PostgresQuery = " ORDER BY e.weight DESC, e.id LIMIT \(limit) OFFSET \(max(0, offset))"
        switch direction {
        case .outgoing: return try await edges("WHERE e.source_node_id = \(nodeID)" + page)
        case .incoming: return try await edges("WHERE e.target_node_id = \(nodeID)" + page)
        case .both: return try await edges("WHERE (e.source_node_id = \(nodeID) OR e.target_node_id = \(nodeID))" + page)
        }
    }

    /// A page of a node's facts (oldest first): at most `limit` from `offset`.
    public func nodeFacts(of nodeID: UUID, offset: Int, limit: Int?) async throws -> [GraphFact] {
        try await run(
            """
            SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.nodeFacts) nf JOIN \(table.facts) f ON f.id = nf.fact_id
            WHERE nf.node_id = \(nodeID) ORDER BY f.created_at, f.id LIMIT \(limit) OFFSET \(max(0, offset))
            """
        ).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// A subgraph with bounds, and whether they cut it short.
    public struct BoundedSubgraph: Sendable {
        /// The nodes, by concept.
        public var nodes: [GraphNode]
        /// The edges among them.
        public var edges: [GraphEdge]
        /// Whether nodes or edges were left out to stay within the bounds.
        public var truncated: Bool
    }

    /// ``subgraph(nodeIDs:depth:)`` within bounds: at most `maxNodes` nodes (parents included;
    /// the heaviest edges are followed first) and `maxEdges` edges; every statement is limited
    /// too, so a hub with a million edges costs no more than the bounds.
    public func subgraph(nodeIDs: [UUID], depth: Int, maxNodes: Int, maxEdges: Int) async throws -> BoundedSubgraph {
        var truncated = false
        var ids = Set(nodeIDs.prefix(maxNodes)), frontier = ids
        if nodeIDs.count > maxNodes { truncated = true }
        levels: for _ in 0..<max(0, depth) where !frontier.isEmpty {
            var next: Set<UUID> = []
            let found = try await edges(touching: frontier, types: nil, limit: maxEdges + 1)
            if found.count > maxEdges { truncated = true }
            for edge in found.prefix(maxEdges) {
                for id in [edge.sourceID, edge.targetID] where !ids.contains(id) && !next.contains(id) {
                    guard ids.count + next.count < maxNodes else { truncated = true; ids.formUnion(next); break levels }
                    next.insert(id)
                }
            }
            ids.formUnion(next)
            frontier = next
        }
        var nodes = try await self.nodes(ids: Array(ids))
        let parents = Set(nodes.compactMap(\.parentID)).subtracting(ids)
        if !parents.isEmpty {
            let room = max(0, maxNodes - ids.count)
            if parents.count > room { truncated = true }
            let added = try await self.nodes(ids: Array(parents.prefix(room)))
            nodes += added
            ids.formUnion(added.map(\.id))
        }
        var edges = try await edges(touching: ids, types: nil, limit: maxEdges * 4 + 1).filter { ids.contains($0.sourceID) && ids.contains($0.targetID) }
        if edges.count > maxEdges {
            truncated = true
            edges = Array(edges.prefix(maxEdges))
        }
        return BoundedSubgraph(nodes: nodes.sorted { $0.concept < $1.concept }, edges: edges.sorted { $0.id.uuidString < $1.id.uuidString }, truncated: truncated)
    }
}
