import Foundation
import KTDB
import KTQdrant
import Logging

/// What graph-db keeps about a node beside the node: its convergence report and its saved versions.
struct ReadNodeRecordStore: ReaderStore {
    let context: ReaderContext

    /// A node's convergence report, or `nil`.
    func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? {
        try await run(
            """
            SELECT convergence_score, converged_claims, recommended_content, computed_at FROM \(table.convergenceReports) WHERE node_id = \(nodeID)
            """
        ).first.map { row throws(KTDBError) in try GraphConvergenceReport(row: row, nodeID: nodeID) }
    }

    /// Saves a version: number max+1, snapshot of concept, definition and counts.
    @discardableResult
    func saveVersion(nodeID: UUID) async throws -> GraphNodeVersion {
        try await runner.withTransaction(logger: logger) { transaction in
            guard try await transaction.query("SELECT 1 FROM \(table.nodes) WHERE id = \(nodeID) FOR UPDATE").first != nil else {
                throw KTGraphError(code: .notFound, message: "no node with id \(nodeID)")
            }
            let row = try await transaction.query(
                """
                INSERT INTO \(table.nodeVersions) (id, node_id, version_number, snapshot)
                SELECT \(UUID()), n.id, coalesce((SELECT max(version_number) FROM \(table.nodeVersions) WHERE node_id = n.id), 0) + 1,
                       jsonb_build_object('concept', n.concept, 'definition', n.definition, 'attractor', n.attractor, 'filter_id', n.filter_id,
                                          'max_content_tokens', n.max_content_tokens, 'fact_count', n.fact_count,
                                          'edge_count', n.edge_count, 'dimension_count', n.dimension_count)
                FROM \(table.nodes) n WHERE n.id = \(nodeID)
                RETURNING version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at
                """
            ).rows[0]
            return try GraphNodeVersion(row: row, nodeID: nodeID)
        }
    }

    /// A node's versions, oldest first.
    func history(of nodeID: UUID) async throws -> [GraphNodeVersion] {
        try await run(
            """
            SELECT version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at FROM \(table.nodeVersions)
            WHERE node_id = \(nodeID) ORDER BY version_number
            """
        ).rows.map { row throws(KTDBError) in try GraphNodeVersion(row: row, nodeID: nodeID) }
    }
}
