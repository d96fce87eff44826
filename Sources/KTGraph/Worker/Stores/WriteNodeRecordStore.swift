import Foundation
import KTDB
import KTQdrant
import Logging

/// What write-db keeps about a node beside the node: its convergence report and its saved versions.
struct WriteNodeRecordStore: WorkerStore {
    let context: WorkerContext

    /// Stores a node's convergence report (one per node; a new one replaces it).
    @discardableResult
    func setConvergenceReport(nodeID: UUID, score: Double, convergedClaims: [String] = [], recommendedContent: String? = nil) async throws -> GraphConvergenceReport {
        guard (0...1).contains(score) else { throw KTGraphError(code: .invalidArgument, message: "a convergence score is between 0 and 1") }
        let key = try await nodeStore.nodeKey(id: nodeID)
        let row = try await run(
            """
            INSERT INTO \(table.convergenceReports) (node_key, convergence_score, converged_claims, recommended_content, computed_at, updated_at)
            VALUES (\(key), \(score), \(convergedClaims), \(recommendedContent), clock_timestamp(), clock_timestamp())
            ON CONFLICT (node_key) DO UPDATE SET convergence_score = EXCLUDED.convergence_score, converged_claims = EXCLUDED.converged_claims,
                recommended_content = EXCLUDED.recommended_content, computed_at = EXCLUDED.computed_at, updated_at = clock_timestamp()
            RETURNING convergence_score, converged_claims, recommended_content, computed_at
            """
        ).rows[0]
        return try GraphConvergenceReport(row: row, nodeID: nodeID)
    }

    /// A node's convergence report, or `nil`.
    func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? {
        try await run(
            """
            SELECT c.convergence_score, c.converged_claims, c.recommended_content, c.computed_at
            FROM \(table.nodes) n JOIN \(table.convergenceReports) c ON c.node_key = n.key WHERE n.node_uuid = \(nodeID)
            """
        ).first.map { row throws(KTDBError) in try GraphConvergenceReport(row: row, nodeID: nodeID) }
    }

    /// Saves a version of a node: number max+1, a snapshot of its concept, definition, attractor,
    /// filter id, max content tokens and fact count.
    @discardableResult
    func saveVersion(nodeID: UUID, sourceNodeCount: Int = 0, isDefault: Bool = false) async throws -> GraphNodeVersion {
        try await database.withTransaction(logger: logger) { t in
            guard let key = try await t.query("SELECT key FROM \(table.nodes) WHERE node_uuid = \(nodeID) FOR UPDATE").first?.decode(0, as: String.self) else {
                throw KTGraphError(code: .notFound, message: "no node with id \(nodeID)")
            }
            let row = try await t.query(
                """
                INSERT INTO \(table.nodeVersions) (id, node_key, version_number, snapshot, source_node_count, is_default, created_at, updated_at)
                SELECT \(UUID()), n.key, coalesce((SELECT max(version_number) FROM \(table.nodeVersions) WHERE node_key = n.key), 0) + 1,
                       jsonb_build_object('concept', n.concept, 'definition', n.definition, 'attractor', n.attractor, 'filter_id', n.filter_id,
                                          'max_content_tokens', n.max_content_tokens, 'fact_count', cardinality(n.fact_ids)),
                       \(sourceNodeCount), \(isDefault), clock_timestamp(), clock_timestamp()
                FROM \(table.nodes) n WHERE n.key = \(key)
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
            SELECT v.version_number, v.snapshot::text AS snapshot, v.source_node_count, v.is_default, v.created_at
            FROM \(table.nodes) n JOIN \(table.nodeVersions) v ON v.node_key = n.key WHERE n.node_uuid = \(nodeID) ORDER BY v.version_number
            """
        ).rows.map { row throws(KTDBError) in try GraphNodeVersion(row: row, nodeID: nodeID) }
    }
}
