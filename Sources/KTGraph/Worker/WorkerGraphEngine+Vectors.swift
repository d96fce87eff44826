import Foundation
import KTQdrant

/// The worker's Qdrant writes: an index over write-db, whose failures are logged and never undo a row.
extension WorkerGraphEngine {
    /// Upserts a node's Qdrant point with `embedding` (payload `concept`, `node_type`);
    /// Qdrant failures are logged, not thrown (write-db stays the truth).
    public func upsertNodeVector(_ node: GraphNode, embedding: [Float]) async { await vectorStore.upsertNodeVector(node, embedding: embedding) }

    /// Upserts facts' Qdrant points with their embeddings (payload `content`, `fact_type`,
    /// `node_ids`); Qdrant failures are logged, not thrown.
    public func upsertFactVectors(_ items: [(fact: GraphFact, embedding: [Float])]) async { await vectorStore.upsertFactVectors(items) }
}
