public import Foundation

/// A graph's dimensions (a model's view of a node) in write-db.
extension WorkerGraphEngine {
    /// Creates or updates the dimension `node:model:batch`.
    @discardableResult
    public func addDimension(nodeID: UUID, modelID: String, content: String, confidence: Double? = nil, batchIndex: Int = 0, factIDs: [UUID] = [], isDefinitive: Bool = false) async throws
        -> GraphDimension
    { try await dimensionStore.addDimension(nodeID: nodeID, modelID: modelID, content: content, confidence: confidence, batchIndex: batchIndex, factIDs: factIDs, isDefinitive: isDefinitive) }

    /// Dimensions of a node.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] { try await dimensionStore.dimensions(of: nodeID) }

    /// Deletes one dimension (the sync deletes it in graph-db too, unlike the original).
    public func deleteDimension(nodeID: UUID, modelID: String, batchIndex: Int = 0) async throws { try await dimensionStore.deleteDimension(nodeID: nodeID, modelID: modelID, batchIndex: batchIndex) }

    /// Deletes every dimension of a node.
    public func deleteDimensions(nodeID: UUID) async throws { try await dimensionStore.deleteDimensions(nodeID: nodeID) }
}
