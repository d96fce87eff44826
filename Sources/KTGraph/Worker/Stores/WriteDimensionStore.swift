import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's dimensions (a model's view of a node) in write-db.
struct WriteDimensionStore: WorkerStore {
    let context: WorkerContext

    /// Creates or updates the dimension `node:model:batch`.
    @discardableResult
    func addDimension(
        nodeID: UUID, modelID: String, content: String, confidence: Double? = nil, batchIndex: Int = 0, factIDs: [UUID] = [],
        isDefinitive: Bool = false
    ) async throws -> GraphDimension {
        let nodeKey = try await nodeStore.nodeKey(id: nodeID)
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
    func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        let key = try await nodeStore.nodeKey(id: nodeID)
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
    func deleteDimension(nodeID: UUID, modelID: String, batchIndex: Int = 0) async throws {
        let key = GraphKeys.dimensionKey(nodeKey: try await nodeStore.nodeKey(id: nodeID), modelID: modelID, batchIndex: batchIndex)
        try await run("DELETE FROM \(table.dimensions) WHERE key = \(key)")
    }

    /// Deletes every dimension of a node.
    func deleteDimensions(nodeID: UUID) async throws {
        try await run("DELETE FROM \(table.dimensions) WHERE node_key = \(try await nodeStore.nodeKey(id: nodeID))")
    }
}
