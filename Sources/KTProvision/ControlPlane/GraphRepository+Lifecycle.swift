public import Foundation
import KTConfig
import KTCore
import KTDB

/// One change of a graph's row, recorded by the control plane's triggers.
public struct GraphChange: Sendable, Hashable {
    /// The change's position in the log.
    public var id: Int64
    /// The graph changed.
    public var graphID: UUID
    /// Its slug before the change.
    public var slug: String
    /// `update` or `delete`.
    public var change: String
}

extension GraphRepository {
    // MARK: Provisioning ownership

    /// Moves a graph to `provisioning` for `owner`, atomically: from `error`, or from
    /// `provisioning` when its provisioner has sent no heartbeat for `lease` (its process is
    /// gone, or lost the control plane). Of two concurrent callers exactly one gets the graph
    /// back, the other `nil`.
    public func claimForRetry(graphID: UUID, owner: UUID, lease: Duration) async throws -> Graph? {
        try await graphs(
            """
            UPDATE graphs SET status = \(GraphStatus.provisioning.rawValue), provisioning_owner = \(owner),
                              provisioning_heartbeat_at = clock_timestamp(), updated_at = now(),
                              provisioning_steps = '{}', provisioning_error = NULL
            WHERE id = \(graphID) AND (status = \(GraphStatus.error.rawValue)
                OR (status = \(GraphStatus.provisioning.rawValue)
                    AND (provisioning_heartbeat_at IS NULL OR provisioning_heartbeat_at < clock_timestamp() - make_interval(secs => \(lease.timeInterval)))))
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        ).first
    }

    /// Moves the graph from `provisioning` to `active`, only while `owner` still provisions it
    /// (a graph deleted or taken over meanwhile stays as it is). Returns `nil` when it did not move.
    public func activate(graphID: UUID, owner: UUID) async throws -> Graph? {
        try await graphs(
            """
            UPDATE graphs SET status = \(GraphStatus.active.rawValue), updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.provisioning.rawValue) AND provisioning_owner = \(owner)
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        ).first
    }

    /// Moves the graph to `deleted` (a soft delete, or the first step of a hard delete) unless
    /// it is provisioning; a graph already `deleted` stays so (a hard delete that failed
    /// resumes from there). Returns `nil` when the graph is provisioning, default or gone.
    public func markDeleted(graphID: UUID) async throws -> Graph? {
        try await graphs(
            """
            UPDATE graphs SET status = \(GraphStatus.deleted.rawValue), updated_at = now()
            WHERE id = \(graphID) AND status IN (\(GraphStatus.active.rawValue), \(GraphStatus.error.rawValue), \(GraphStatus.deleted.rawValue))
              AND NOT is_default
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        ).first
    }

    /// Records why a hard delete did not finish (the graph stays `deleted`; running the hard
    /// delete again resumes it).
    public func recordDeleteFailure(graphID: UUID, reason: String) async throws {
        try await runner.run(
            """
            UPDATE graphs SET provisioning_error = \(reason), updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.deleted.rawValue)
            """, logger: logger)
    }

    /// Appends a finished provisioning step to the graph's progress (while it is provisioning).
    public func recordProvisioningStep(graphID: UUID, step: String) async throws {
        try await runner.run(
            """
            UPDATE graphs SET provisioning_steps = array_append(provisioning_steps, \(step))
            WHERE id = \(graphID) AND status = \(GraphStatus.provisioning.rawValue) AND NOT (\(step) = ANY(provisioning_steps))
            """, logger: logger)
    }

    /// Moves a provisioning graph to `error`, recording why.
    public func recordProvisioningFailure(graphID: UUID, reason: String) async throws {
        try await runner.run(
            """
            UPDATE graphs SET status = \(GraphStatus.error.rawValue), provisioning_error = \(reason), updated_at = now()
            WHERE id = \(graphID) AND status IN (\(GraphStatus.provisioning.rawValue), \(GraphStatus.error.rawValue))
            """, logger: logger)
    }

    /// Records that `owner` is still provisioning the graph; `false` when the graph is no longer
    /// provisioning or another owner took it over.
    @discardableResult
    public func heartbeat(graphID: UUID, owner: UUID) async throws -> Bool {
        let result = try await runner.run(
            """
            UPDATE graphs SET provisioning_heartbeat_at = clock_timestamp()
            WHERE id = \(graphID) AND provisioning_owner = \(owner) AND status = \(GraphStatus.provisioning.rawValue)
            RETURNING id
            """, logger: logger)
        return !result.rows.isEmpty
    }

    /// Moves to `error` the graphs in `provisioning` whose provisioner has not sent a heartbeat
    /// for `lease` (its process is gone); a graph another live process is provisioning stays.
    /// Returns their slugs.
    public func recoverAbandonedProvisioning(lease: Duration) async throws -> [String] {
        let seconds = lease.timeInterval
        let result = try await runner.run(
            """
            UPDATE graphs SET status = \(GraphStatus.error.rawValue), updated_at = now(),
                              provisioning_error = 'the process provisioning it stopped before it finished'
            WHERE status = \(GraphStatus.provisioning.rawValue)
              AND (provisioning_heartbeat_at IS NULL OR provisioning_heartbeat_at < clock_timestamp() - make_interval(secs => \(seconds)))
            RETURNING slug
            """, logger: logger)
        return try result.rows.map { row throws(KTDBError) in try row.decode(0, as: String.self) }.sorted()
    }

    // MARK: Change log

    /// The changes recorded in the last `window`, oldest first.
    public func recentChanges(within window: Duration) async throws -> [GraphChange] {
        let seconds = window.timeInterval
        let result = try await runner.run(
            """
            SELECT id, graph_id, slug, change FROM graph_changes
            WHERE changed_at > clock_timestamp() - make_interval(secs => \(seconds))
            ORDER BY id
            """, logger: logger)
        return try result.rows.map { row throws(KTDBError) in
            GraphChange(
                id: try row.decode(0, as: Int64.self), graphID: try row.decode(1, as: UUID.self),
                slug: try row.decode(2, as: String.self), change: try row.decode(3, as: String.self))
        }
    }

    /// Deletes change records older than `age`.
    public func pruneChanges(olderThan age: Duration) async throws {
        let seconds = age.timeInterval
        try await runner.run("DELETE FROM graph_changes WHERE changed_at < clock_timestamp() - make_interval(secs => \(seconds))", logger: logger)
    }

    /// The current rows of the graphs with `ids` (missing ones were hard-deleted).
    public func graphs(ids: [UUID]) async throws -> [Graph] {
        guard !ids.isEmpty else { return [] }
        return try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE id = ANY(\(ids.map(\.uuidString))::uuid[])")
    }
}

extension GraphRepository {
    // MARK: Migration outcomes

    /// Records the outcome of a migrate-all: `failed` graphs keep their reason in
    /// `schema_error`, the `migrated` ones have it cleared. Two statements at most.
    public func recordSchemaOutcomes(failed: [UUID: String], migrated: [UUID]) async throws {
        if !migrated.isEmpty {
            try await runner.run(
                "UPDATE graphs SET schema_error = NULL WHERE id = ANY(\(migrated.map(\.uuidString))::uuid[]) AND schema_error IS NOT NULL", logger: logger)
        }
        guard !failed.isEmpty else { return }
        let ids = failed.keys.map(\.uuidString), reasons = failed.keys.map { failed[$0]! }
        try await runner.run(
            """
            UPDATE graphs SET schema_error = f.reason
            FROM unnest(\(ids)::uuid[], \(reasons)::text[]) AS f(id, reason)
            WHERE graphs.id = f.id
            """, logger: logger)
    }
}
