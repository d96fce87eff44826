public import Foundation
import KTDB

extension GraphRepository {
    // MARK: Moves between database pairs

    /// Marks an active graph as moving to `target` (a connection key), atomically: `nil` when
    /// the graph is not active (another move, provisioning, deleted).
    public func beginMove(graphID: UUID, target: String) async throws -> Graph? {
        try await graphs(
            """
            UPDATE graphs SET status = \(GraphStatus.moving.rawValue), move_target = \(target), move_phase = 'copying',
                              provisioning_steps = '{}', provisioning_error = NULL, updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.active.rawValue)
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        ).first
    }

    /// Records a moving graph's phase (also appended to its progress steps).
    public func setMovePhase(graphID: UUID, phase: String) async throws {
        try await runner.run(
            """
            UPDATE graphs SET move_phase = \(phase), provisioning_steps = array_append(provisioning_steps, \(phase)), updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.moving.rawValue)
            """, logger: logger)
    }

    /// The switch: the graph's pair becomes `connectionID` (`nil`: the system pair) and it is
    /// active again, with `source` (the key of the pair it left) recorded until
    /// ``clearMoveSource(graphID:)``, in one statement. Returns `nil` when the graph was not moving.
    public func finishMove(graphID: UUID, connectionID: UUID?, source: String) async throws -> Graph? {
        try await graphs(
            """
            UPDATE graphs SET database_connection_id = \(connectionID), status = \(GraphStatus.active.rawValue),
                              move_target = NULL, move_phase = NULL, move_source = \(source), updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.moving.rawValue)
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        ).first
    }

    /// Ends a move that did not switch: the graph is active on its source again, with `reason`.
    public func abortMove(graphID: UUID, reason: String?) async throws {
        try await runner.run(
            """
            UPDATE graphs SET status = \(GraphStatus.active.rawValue), move_target = NULL, move_phase = NULL,
                              provisioning_error = \(reason), updated_at = now()
            WHERE id = \(graphID) AND status = \(GraphStatus.moving.rawValue)
            """, logger: logger)
    }

    /// The source a move left is dropped: forget it.
    public func clearMoveSource(graphID: UUID) async throws {
        try await runner.run("UPDATE graphs SET move_source = NULL, updated_at = now() WHERE id = \(graphID)", logger: logger)
    }

    /// Graphs whose move switched but whose source was not dropped yet (its process stopped).
    public func listWithMoveSource() async throws -> [Graph] {
        try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE move_source IS NOT NULL AND status <> \(GraphStatus.deleted.rawValue) ORDER BY slug")
    }
}
