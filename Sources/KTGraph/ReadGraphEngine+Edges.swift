public import Foundation
import KTDB
import KTQdrant
import Logging

/// Edges, neighbourhoods, subgraphs and paths in graph-db.
extension ReadGraphEngine {
    // MARK: Edges

    private var edgeSelect: PostgresQuery {
        """
        SELECT e.id, e.source_node_id, e.target_node_id, e.relationship_type, e.weight, e.justification,
               coalesce((SELECT array_agg(ef.fact_id::text ORDER BY ef.fact_id) FROM \(table.edgeFacts) ef WHERE ef.edge_id = e.id), '{}') AS fact_ids
        FROM \(table.edges) e
        """
    }

    static func edge(_ row: PostgresRow) throws(KTDBError) -> GraphEdge {
        GraphEdge(
            id: try row.decode("id", as: UUID.self), sourceID: try row.decode("source_node_id", as: UUID.self),
            targetID: try row.decode("target_node_id", as: UUID.self), relationshipType: try row.decode("relationship_type", as: RelationshipType.self),
            weight: try row.decode("weight", as: Double.self), justification: try row.decode("justification", as: String?.self),
            factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
    }

    func edges(_ tail: PostgresQuery) async throws -> [GraphEdge] {
        try await run(edgeSelect + " " + tail).rows.map { row throws(KTDBError) in try Self.edge(row) }
    }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        try await edges(of: nodeID, direction: direction, offset: 0, limit: nil)
    }

    /// The edge with `id`, or `nil`.
    public func edge(id: UUID) async throws -> GraphEdge? { try await edges("WHERE e.id = \(id)").first }

    func edges(touching ids: Set<UUID>, types: [String]?, limit: Int? = nil) async throws -> [GraphEdge] {
        guard !ids.isEmpty else { return [] }
        let list = ids.map(\.uuidString)
        return try await edges(
            """
            WHERE (e.source_node_id = ANY(\(list)::uuid[]) OR e.target_node_id = ANY(\(list)::uuid[]))
              AND (\(types)::text[] IS NULL OR e.relationship_type = ANY(\(types)::text[]))
            ORDER BY e.weight DESC, e.id LIMIT \(limit)
            """)
    }

    /// Nodes within `depth` hops of a node (the node itself excluded), loading edges level by level.
    public func neighbors(of nodeID: UUID, depth: Int = 1, types: [String]? = nil) async throws -> [GraphNode] {
        var reached = try await expand([nodeID], depth: depth, types: types)
        reached.remove(nodeID)
        return try await nodes(ids: Array(reached))
    }

    /// `start` and every node within `depth` hops of it, loading edges level by level.
    func expand(_ start: Set<UUID>, depth: Int, types: [String]?) async throws -> Set<UUID> {
        var reached = start, frontier = start
        for _ in 0..<max(0, depth) where !frontier.isEmpty {
            var next: Set<UUID> = []
            for edge in try await edges(touching: frontier, types: types) {
                for id in [edge.sourceID, edge.targetID] where !reached.contains(id) { next.insert(id) }
            }
            reached.formUnion(next)
            frontier = next
        }
        return reached
    }

    /// A subgraph: the given nodes expanded `depth` times by their neighbours, plus the parents
    /// of those nodes, and the edges among them (with their fact ids).
    public func subgraph(nodeIDs: [UUID], depth: Int = 0) async throws -> (nodes: [GraphNode], edges: [GraphEdge]) {
        var ids = try await expand(Set(nodeIDs), depth: depth, types: nil)
        var nodes = try await self.nodes(ids: Array(ids))
        let parents = Set(nodes.compactMap(\.parentID)).subtracting(ids)
        if !parents.isEmpty {
            nodes += try await self.nodes(ids: Array(parents))
            ids.formUnion(parents)
        }
        let edges = try await edges(touching: ids, types: nil).filter { ids.contains($0.sourceID) && ids.contains($0.targetID) }
        return (nodes.sorted { $0.concept < $1.concept }, edges.sorted { $0.id.uuidString < $1.id.uuidString })
    }

    /// One step of a path: the node reached and the edge used (`nil` for the start).
    public struct PathStep: Sendable, Hashable {
        /// The node.
        public var nodeID: UUID
        /// The edge that led here.
        public var edge: GraphEdge?
    }

    /// Shortest paths between two nodes (edges in either direction): breadth-first, level by
    /// level with one edge query per level; stops at the first level that reaches the target.
    public func shortestPaths(from source: UUID, to target: UUID, maxDepth: Int = 6, limit: Int = 5) async throws -> [[PathStep]] {
        if source == target { return [[PathStep(nodeID: source, edge: nil)]] }
        var parents: [UUID: [(UUID, GraphEdge)]] = [:]
        var visited: Set<UUID> = [source]
        var frontier: Set<UUID> = [source]
        var found = false
        for _ in 0..<maxDepth where !frontier.isEmpty && !found {
            var next: Set<UUID> = []
            for edge in try await edges(touching: frontier, types: nil) {
                for (from, to) in [(edge.sourceID, edge.targetID), (edge.targetID, edge.sourceID)] where frontier.contains(from) && !visited.contains(to) {
                    parents[to, default: []].append((from, edge))
                    next.insert(to)
                }
            }
            visited.formUnion(next)
            frontier = next
            found = next.contains(target)
        }
        guard found else { return [] }
        var paths: [[PathStep]] = []
        func walk(_ node: UUID, _ suffix: [PathStep]) {
            guard paths.count < limit else { return }
            if node == source {
                paths.append([PathStep(nodeID: source, edge: nil)] + suffix)
                return
            }
            for (previous, edge) in parents[node] ?? [] { walk(previous, [PathStep(nodeID: node, edge: edge)] + suffix) }
        }
        walk(target, [])
        return paths
    }
}
