public import Foundation

/// What write-db keeps about a node beside the node: its convergence report and its saved versions.
extension WorkerGraphEngine {
    /// Stores a node's convergence report (one per node; a new one replaces it).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node;
    ///   ``KTGraphError/Code/invalidArgument`` for a score outside 0...1.
    @discardableResult
    public func setConvergenceReport(nodeID: UUID, score: Double, convergedClaims: [String] = [], recommendedContent: String? = nil) async throws -> GraphConvergenceReport {
        try await nodeRecordStore.setConvergenceReport(nodeID: nodeID, score: score, convergedClaims: convergedClaims, recommendedContent: recommendedContent)
    }

    /// A node's convergence report, or `nil`.
    public func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? { try await nodeRecordStore.convergenceReport(of: nodeID) }

    /// Saves a version of a node: number max+1, a snapshot of its concept, definition,
    /// attractor, filter id, max content tokens and fact count. (The original's worker engine
    /// had a no-op here.)
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` for an unknown node.
    @discardableResult
    public func saveVersion(nodeID: UUID, sourceNodeCount: Int = 0, isDefault: Bool = false) async throws -> GraphNodeVersion {
        try await nodeRecordStore.saveVersion(nodeID: nodeID, sourceNodeCount: sourceNodeCount, isDefault: isDefault)
    }

    /// A node's versions, oldest first.
    public func history(of nodeID: UUID) async throws -> [GraphNodeVersion] { try await nodeRecordStore.history(of: nodeID) }
}
