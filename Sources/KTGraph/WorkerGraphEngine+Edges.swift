public import Foundation
import KTDB
import KTQdrant
import Logging

/// Edges and dimensions in write-db.
extension WorkerGraphEngine {
    // MARK: Edges

    static func edge(_ row: PostgresRow) throws(KTDBError) -> GraphEdge {
        GraphEdge(
            id: GraphKeys.id(forKey: try row.decode("key", as: String.self)),
            sourceID: GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)),
            targetID: GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)),
            relationshipType: try row.decode("relationship_type", as: RelationshipType.self), weight: try row.decode("weight", as: Double.self),
            justification: try row.decode("justification", as: String?.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
    }

    /// Creates or updates the edge `type(source, target)` (key order-insensitive for undirected types).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when either node is missing.
    @discardableResult
    public func createEdge(
        sourceID: UUID, targetID: UUID, relationshipType: RelationshipType = .related, weight: Double = 0.5,
        justification: String? = nil, factIDs: [UUID] = []
    ) async throws -> GraphEdge {
        guard sourceID != targetID else { throw KTGraphError(code: .invalidArgument, message: "an edge needs two different nodes") }
        let sourceKey = try await nodeKey(id: sourceID), targetKey = try await nodeKey(id: targetID)
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
    public func linkFactToEdge(_ edge: GraphEdge, factID: UUID) async throws {
        let key = try await edgeKey(edge)
        try await run(
            """
            UPDATE \(table.edges) SET fact_ids = fact_ids || ARRAY[\(factID.uuidString.lowercased())]::text[], updated_at = clock_timestamp()
            WHERE key = \(key) AND NOT fact_ids @> ARRAY[\(factID.uuidString.lowercased())]::text[]
            """)
    }

    /// Deletes an edge in write-db (the sync deletes it in graph-db).
    public func deleteEdge(_ edge: GraphEdge) async throws {
        try await run("DELETE FROM \(table.edges) WHERE key = \(try await edgeKey(edge))")
    }

    func edgeKey(_ edge: GraphEdge) async throws -> String {
        GraphKeys.edgeKey(edge.relationshipType, try await nodeKey(id: edge.sourceID), try await nodeKey(id: edge.targetID))
    }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        let key = try await nodeKey(id: nodeID)
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

    // MARK: Dimensions

    /// Creates or updates the dimension `node:model:batch`.
    @discardableResult
    public func addDimension(
        nodeID: UUID, modelID: String, content: String, confidence: Double? = nil, batchIndex: Int = 0, factIDs: [UUID] = [],
        isDefinitive: Bool = false
    ) async throws -> GraphDimension {
        let nodeKey = try await nodeKey(id: nodeID)
        let key = GraphKeys.dimensionKey(nodeKey: nodeKey, modelID: modelID, batchIndex: batchIndex)
        try await run(
            """
            INSERT INTO \(table.dimensions) AS d (key, node_key, model_id, content, confidence, batch_index, fact_count, is_definitive, fact_ids, created_at, updated_at)
            VALUES (\(key), \(nodeKey), \(modelID), \(content), \(confidence), \(batchIndex), \(factIDs.count), \(isDefinitive),
                    \(factIDs.map { $0.uuidString.lowercased() })::text[], clock_timestamp(), clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, confidence = COALESCE(EXCLUDED.confidence, d.confidence),
                fact_ids = EXCLUDED.fact_ids, fact_count = EXCLUDED.fact_count, is_definitive = EXCLUDED.is_definitive, updated_at = clock_timestamp()
            """)
        return GraphDimension(
            id: GraphKeys.id(forKey: key), nodeID: nodeID, modelID: modelID, content: content, confidence: confidence,
            batchIndex: batchIndex, factIDs: factIDs)
    }

    /// Dimensions of a node.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        let key = try await nodeKey(id: nodeID)
        return try await run(
            """
            SELECT key, model_id, content, confidence, batch_index, fact_ids FROM \(table.dimensions) WHERE node_key = \(key) ORDER BY model_id, batch_index
            """
        ).rows.map { row throws(KTDBError) in
            GraphDimension(
                id: GraphKeys.id(forKey: try row.decode("key", as: String.self)), nodeID: nodeID, modelID: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                batchIndex: try row.decode("batch_index", as: Int.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
        }
    }

    /// Deletes one dimension (the sync deletes it in graph-db too, unlike the original).
    public func deleteDimension(nodeID: UUID, modelID: String, batchIndex: Int = 0) async throws {
        let key = GraphKeys.dimensionKey(nodeKey: try await nodeKey(id: nodeID), modelID: modelID, batchIndex: batchIndex)
        try await run("DELETE FROM \(table.dimensions) WHERE key = \(key)")
    }

    /// Deletes every dimension of a node.
    public func deleteDimensions(nodeID: UUID) async throws {
        try await run("DELETE FROM \(table.dimensions) WHERE node_key = \(try await nodeKey(id: nodeID))")
    }
}
