import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's edges in write-db.
struct WriteEdgeStore: WorkerStore {
    let context: WorkerContext

    static func edge(_ row: PostgresRow) throws(KTDBError) -> GraphEdge {
        GraphEdge(
            id: GraphKeys.id(forKey: try row.decode("key", as: String.self)),
            sourceID: GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)),
            targetID: GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)),
            relationshipType: try row.decode("relationship_type", as: RelationshipType.self), weight: try row.decode("weight", as: Double.self),
            justification: try row.decode("justification", as: String?.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
    }

    /// Creates or updates the edge `type(source, target)` (key order-insensitive for undirected types).
    @discardableResult
    func createEdge(
        sourceID: UUID, targetID: UUID, relationshipType: RelationshipType = .related, weight: Double = 0.5,
        justification: String? = nil, factIDs: [UUID] = []
    ) async throws -> GraphEdge {
        guard sourceID != targetID else { throw KTGraphError(code: .invalidArgument, message: "an edge needs two different nodes") }
        let sourceKey = try await nodeStore.nodeKey(id: sourceID), targetKey = try await nodeStore.nodeKey(id: targetID)
        let key = GraphKeys.edgeKey(relationshipType, sourceKey, targetKey)
        let (a, b) = GraphKeys.orderedNodeKeys(relationshipType, sourceKey, targetKey)
        let row = try await run(
            """
            INSERT INTO \(table.edges) AS e (key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids, created_at, updated_at)
            VALUES (\(key), \(a), \(b), \(relationshipType), \(weight), \(justification), \(factIDs.map { $0.uuidString.lowercased() })::text[], clock_timestamp(), clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET weight = EXCLUDED.weight, justification = COALESCE(EXCLUDED.justification, e.justification),
                fact_ids = ARRAY(SELECT DISTINCT unnest(e.fact_ids || EXCLUDED.fact_ids)), updated_at = clock_timestamp()
            RETURNING key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids
            """
        ).rows[0]
        return try Self.edge(row)
    }

    /// Adds a fact to an edge's `fact_ids`.
    func linkFactToEdge(_ edge: GraphEdge, factID: UUID) async throws {
        let key = try await edgeKey(edge)
        try await run(
            """
            UPDATE \(table.edges) SET fact_ids = fact_ids || ARRAY[\(factID.uuidString.lowercased())]::text[], updated_at = clock_timestamp()
            WHERE key = \(key) AND NOT fact_ids @> ARRAY[\(factID.uuidString.lowercased())]::text[]
            """)
    }

    /// Deletes an edge in write-db (the sync deletes it in graph-db).
    func deleteEdge(_ edge: GraphEdge) async throws {
        try await run("DELETE FROM \(table.edges) WHERE key = \(try await edgeKey(edge))")
    }

    func edgeKey(_ edge: GraphEdge) async throws -> String {
        GraphKeys.edgeKey(edge.relationshipType, try await nodeStore.nodeKey(id: edge.sourceID), try await nodeStore.nodeKey(id: edge.targetID))
    }

    /// Edges of a node.
    func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        let key = try await nodeStore.nodeKey(id: nodeID)
        let condition: PostgresQuery =
            switch direction {
            case .outgoing: "source_node_key = \(key)"
            case .incoming: "target_node_key = \(key)"
            case .both: "(source_node_key = \(key) OR target_node_key = \(key))"
            }
        var query: PostgresQuery = "SELECT key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids FROM \(table.edges) WHERE "
        query.append(condition)
        query.append(" ORDER BY key")
        return try await run(query).rows.map { row throws(KTDBError) in try Self.edge(row) }
    }

    /// Of `candidates`, the nodes that already have an edge with `nodeID` (either direction, any type)
    /// updated within the last `stalenessDays` days.
    func recentEdgePairs(nodeID: UUID, candidates: [UUID], stalenessDays: Int = 30) async throws -> Set<UUID> {
        guard !candidates.isEmpty else { return [] }
        guard stalenessDays >= 0 else { throw KTGraphError(code: .invalidArgument, message: "staleness days must not be negative") }
        return Set(
            try await run(
                """
                WITH me AS (SELECT key FROM \(table.nodes) WHERE node_uuid = \(nodeID)),
                     c AS (SELECT key, node_uuid FROM \(table.nodes) WHERE node_uuid = ANY(\(candidates.map(\.uuidString))::uuid[]))
                SELECT DISTINCT c.node_uuid FROM me, c, \(table.edges) e
                WHERE ((e.source_node_key = me.key AND e.target_node_key = c.key) OR (e.source_node_key = c.key AND e.target_node_key = me.key))
                  AND e.updated_at > now() - make_interval(days => \(stalenessDays)::int)
                """
            ).uuids(0))
    }
}
