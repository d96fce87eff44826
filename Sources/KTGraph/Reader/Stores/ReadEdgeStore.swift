public import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's edges in graph-db: a node's edges, neighbourhoods, subgraphs, shortest paths, lists.
struct ReadEdgeStore: ReaderStore {
    let context: ReaderContext

    /// A page of a node's edges (heaviest first): at most `limit` from `offset`.
    func edges(of nodeID: UUID, direction: EdgeDirection = .both, offset: Int, limit: Int?) async throws -> [GraphEdge] {
        let page: PostgresQuery = " ORDER BY e.weight DESC, e.id LIMIT \(limit) OFFSET \(max(0, offset))"
        switch direction {
        case .outgoing: return try await edges("WHERE e.source_node_id = \(nodeID)" + page)
        case .incoming: return try await edges("WHERE e.target_node_id = \(nodeID)" + page)
        case .both: return try await edges("WHERE (e.source_node_id = \(nodeID) OR e.target_node_id = \(nodeID))" + page)
        }
    }

    /// ``subgraph(nodeIDs:depth:)`` within bounds: at most `maxNodes` nodes (parents included; the
    /// heaviest edges are followed first) and `maxEdges` edges; every statement is limited too, so a
    /// hub with a million edges costs no more than the bounds.
    func subgraph(nodeIDs: [UUID], depth: Int, maxNodes: Int, maxEdges: Int) async throws -> ReadGraphEngine.BoundedSubgraph {
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
        var nodes = try await nodeStore.nodes(ids: Array(ids))
        let parents = Set(nodes.compactMap(\.parentID)).subtracting(ids)
        if !parents.isEmpty {
            let room = max(0, maxNodes - ids.count)
            if parents.count > room { truncated = true }
            let added = try await nodeStore.nodes(ids: Array(parents.prefix(room)))
            nodes += added
            ids.formUnion(added.map(\.id))
        }
        var edges = try await edges(touching: ids, types: nil, limit: maxEdges * 4 + 1).filter { ids.contains($0.sourceID) && ids.contains($0.targetID) }
        if edges.count > maxEdges {
            truncated = true
            edges = Array(edges.prefix(maxEdges))
        }
        return ReadGraphEngine.BoundedSubgraph(nodes: nodes.sorted { $0.concept < $1.concept }, edges: edges.sorted { $0.id.uuidString < $1.id.uuidString }, truncated: truncated)
    }

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
    func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        try await edges(of: nodeID, direction: direction, offset: 0, limit: nil)
    }

    /// The edge with `id`, or `nil`.
    func edge(id: UUID) async throws -> GraphEdge? { try await edges("WHERE e.id = \(id)").first }

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
    func neighbors(of nodeID: UUID, depth: Int = 1, types: [String]? = nil) async throws -> [GraphNode] {
        var reached = try await expand([nodeID], depth: depth, types: types)
        reached.remove(nodeID)
        return try await nodeStore.nodes(ids: Array(reached))
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

    /// A subgraph: the given nodes expanded `depth` times by their neighbours, plus the parents of
    /// those nodes, and the edges among them (with their fact ids).
    func subgraph(nodeIDs: [UUID], depth: Int = 0) async throws -> (nodes: [GraphNode], edges: [GraphEdge]) {
        var ids = try await expand(Set(nodeIDs), depth: depth, types: nil)
        var nodes = try await nodeStore.nodes(ids: Array(ids))
        let parents = Set(nodes.compactMap(\.parentID)).subtracting(ids)
        if !parents.isEmpty {
            nodes += try await nodeStore.nodes(ids: Array(parents))
            ids.formUnion(parents)
        }
        let edges = try await edges(touching: ids, types: nil).filter { ids.contains($0.sourceID) && ids.contains($0.targetID) }
        return (nodes.sorted { $0.concept < $1.concept }, edges.sorted { $0.id.uuidString < $1.id.uuidString })
    }

    /// Shortest paths between two nodes (edges in either direction): breadth-first, level by level with
    /// one edge query per level; stops at the first level that reaches the target.
    func shortestPaths(from source: UUID, to target: UUID, maxDepth: Int = 6, limit: Int = 5) async throws -> [[ReadGraphEngine.PathStep]] {
        if source == target { return [[ReadGraphEngine.PathStep(nodeID: source, edge: nil)]] }
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
        var paths: [[ReadGraphEngine.PathStep]] = []
        func walk(_ node: UUID, _ suffix: [ReadGraphEngine.PathStep]) {
            guard paths.count < limit else { return }
            if node == source {
                paths.append([ReadGraphEngine.PathStep(nodeID: source, edge: nil)] + suffix)
                return
            }
            for (previous, edge) in parents[node] ?? [] { walk(previous, [ReadGraphEngine.PathStep(nodeID: node, edge: edge)] + suffix) }
        }
        walk(target, [])
        return paths
    }

    /// For each of `nodeIDs`, its neighbours with their concept and the edge between them, in two
    /// statements (`batch_get_neighbors_with_concepts`).
    func neighborsWithConcepts(of nodeIDs: [UUID]) async throws -> [UUID: [NeighborWithConcept]] {
        var result = Dictionary(nodeIDs.map { ($0, [NeighborWithConcept]()) }, uniquingKeysWith: { a, _ in a })
        guard !nodeIDs.isEmpty else { return result }
        let list = nodeIDs.map(\.uuidString)
        let edges = try await edges(
            """
            WHERE e.source_node_id = ANY(\(list)::uuid[]) OR e.target_node_id = ANY(\(list)::uuid[]) ORDER BY e.weight DESC, e.id
            """)
        let others = Set(edges.flatMap { [$0.sourceID, $0.targetID] })
        let concepts = Dictionary(try await nodeStore.nodes(ids: Array(others)).map { ($0.id, $0.concept) }, uniquingKeysWith: { a, _ in a })
        for edge in edges {
            for (me, other) in [(edge.sourceID, edge.targetID), (edge.targetID, edge.sourceID)] where result[me] != nil && me != other {
                guard let concept = concepts[other] else { continue }
                result[me]?.append(NeighborWithConcept(neighborID: other, concept: concept, edge: edge))
            }
        }
        return result
    }

    private func edgeFilter(relationshipType: RelationshipType?, nodeID: UUID?) -> PostgresQuery {
        "WHERE (\(relationshipType)::text IS NULL OR e.relationship_type = \(relationshipType)) AND (\(nodeID)::uuid IS NULL OR e.source_node_id = \(nodeID) OR e.target_node_id = \(nodeID))"
    }

    /// A page of edges (heaviest first), filtered by type and by a node at either end.
    func listEdges(offset: Int = 0, limit: Int = 20, relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> [GraphEdge] {
        try await edges(edgeFilter(relationshipType: relationshipType, nodeID: nodeID) + " ORDER BY e.weight DESC, e.id OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))")
    }

    /// The number of edges matching the filters of
    /// ``listEdges(offset:limit:relationshipType:nodeID:)``.
    func countEdges(relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.edges) e " + edgeFilter(relationshipType: relationshipType, nodeID: nodeID)).first?.decode(0, as: Int.self) ?? 0
    }

    /// A node's edges with the other node's concept and type, most facts first, a page of them and the
    /// total.
    func edgesWithTargets(of nodeID: UUID, limit: Int = 50, offset: Int = 0, edgeType: RelationshipType? = nil) async throws -> (edges: [EdgeWithTarget], total: Int) {
        let all = try await edges(edgeFilter(relationshipType: edgeType, nodeID: nodeID))
        let others = Dictionary(
            try await nodeStore.nodes(ids: Array(Set(all.map { $0.sourceID == nodeID ? $0.targetID : $0.sourceID }))).map { ($0.id, $0) },
            uniquingKeysWith: { a, _ in a })
        let sorted = all.sorted { ($0.factIDs.count, $1.id.uuidString) > ($1.factIDs.count, $0.id.uuidString) }
        let page = sorted.dropFirst(max(0, offset)).prefix(max(0, limit)).compactMap { edge -> EdgeWithTarget? in
            let other = edge.sourceID == nodeID ? edge.targetID : edge.sourceID
            return others[other].map { EdgeWithTarget(edge: edge, otherNodeID: other, otherConcept: $0.concept, otherNodeType: $0.nodeType) }
        }
        return (Array(page), all.count)
    }
}

extension ReadGraphEngine {
    /// A subgraph with bounds, and whether they cut it short.
    public struct BoundedSubgraph: Sendable {
        /// The nodes, by concept.
        public var nodes: [GraphNode]
        /// The edges among them.
        public var edges: [GraphEdge]
        /// Whether nodes or edges were left out to stay within the bounds.
        public var truncated: Bool
    }

    /// One step of a path: the node reached and the edge used (`nil` for the start).
    public struct PathStep: Sendable, Hashable {
        /// The node.
        public var nodeID: UUID
        /// The edge that led here.
        public var edge: GraphEdge?
    }
}
