import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's dimensions in graph-db.
struct ReadDimensionStore: ReaderStore {
    let context: ReaderContext

    /// Dimensions of a node with their fact ids.
    func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        try await run(
            """
            SELECT d.id, d.node_id, d.model_id, d.content, d.confidence, d.batch_index,
                   coalesce((SELECT array_agg(df.fact_id::text ORDER BY df.fact_id) FROM \(table.dimensionFacts) df WHERE df.dimension_id = d.id), '{}') AS fact_ids
            FROM \(table.dimensions) d WHERE d.node_id = \(nodeID) ORDER BY d.model_id, d.batch_index
            """
        ).rows.map { row throws(KTDBError) in
            GraphDimension(
                id: try row.decode("id", as: UUID.self), nodeID: try row.decode("node_id", as: UUID.self), modelID: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                batchIndex: try row.decode("batch_index", as: Int.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
        }
    }
}
