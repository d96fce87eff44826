public import Foundation

/// A graph's dimensions in graph-db.
extension ReadGraphEngine {
    /// Dimensions of a node with their fact ids.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] { try await dimensionStore.dimensions(of: nodeID) }
}
