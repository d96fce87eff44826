public import Foundation
import KTDB

/// How far a graph's graph-db is behind its write-db.
public struct SyncStatus: Sendable, Hashable {
    /// When the oldest write-db change not yet synced was made (`nil`: everything is synced).
    public var oldestUnsyncedChange: Date?
    /// Rows waiting in the retry queue (deferred or failed, to be retried).
    public var pending: Int
    /// Rows given up after the maximum retries (the dead letters).
    public var deadLetters: Int

    /// The sync lag at `now`: the age of the oldest unsynced change (zero when synced).
    public func lag(at now: Date = Date()) -> TimeInterval {
        oldestUnsyncedChange.map { max(0, now.timeIntervalSince($0)) } ?? 0
    }
}

extension SyncEngine {
    /// The graph's sync status, read from write-db in one statement: the oldest change above
    /// each table's watermark (tombstones included) and the retry queue's counts.
    public func status() async throws -> SyncStatus {
        var query: PostgresQuery = "SELECT min(changed), (SELECT count(*) FILTER (WHERE status = 'pending') FROM sync_failures WHERE graph_slug = \(graphSlug)), "
        query.append("(SELECT count(*) FILTER (WHERE status = 'abandoned') FROM sync_failures WHERE graph_slug = \(graphSlug)) FROM (")
        for (index, table) in (Self.tables + ["write_tombstones"]).enumerated() {
            if index > 0 { query.append(" UNION ALL ") }
            let column = table == "write_tombstones" ? "deleted_at" : "updated_at"
            query.append(PostgresQuery(unsafeSQL: "SELECT min(\(column)) AS changed FROM \(table) WHERE \(column) > "))
            query.append("coalesce((SELECT last_synced_at FROM sync_watermarks WHERE table_name = \(table) AND graph_slug = \(graphSlug)), '-infinity'::timestamptz)")
        }
        query.append(") AS changes")
        let row = try await writeSession.query(query, logger: logger).first
        return SyncStatus(
            oldestUnsyncedChange: try row?.decode(0, as: Date?.self),
            pending: try row?.decode(1, as: Int.self) ?? 0,
            deadLetters: try row?.decode(2, as: Int.self) ?? 0)
    }
}
