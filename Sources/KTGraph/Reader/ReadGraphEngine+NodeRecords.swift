public import Foundation

/// What graph-db keeps about a node beside the node: its convergence report and its saved versions.
extension ReadGraphEngine {
    /// A node's convergence report, or `nil`.
    public func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? { try await nodeRecordStore.convergenceReport(of: nodeID) }

    /// Saves a version: number max+1, snapshot of concept, definition and counts.
    @discardableResult
    public func saveVersion(nodeID: UUID) async throws -> GraphNodeVersion { try await nodeRecordStore.saveVersion(nodeID: nodeID) }

    /// A node's versions, oldest first.
    public func history(of nodeID: UUID) async throws -> [GraphNodeVersion] { try await nodeRecordStore.history(of: nodeID) }
}
