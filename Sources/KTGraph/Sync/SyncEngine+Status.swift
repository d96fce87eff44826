public import Foundation
public import KTDB
public import Logging

/// How far the sync may move its watermarks: below the start of the oldest write transaction in
/// progress in the write-db when it was measured, and below that moment.
///
/// A bound stays safe after it was measured (a transaction starting later writes later
/// timestamps), so one measurement serves every graph of a write-db for a pass.
///
/// It counts transactions running a statement that has no transaction id yet (an `INSERT` that
/// has evaluated `clock_timestamp()` but not yet written its row). One measurement serves every
/// table of a cycle: a row still uncommitted when a later table is read belongs to a transaction
/// counted here or begun since. It is also the transaction's first look at `pg_stat_activity`,
/// which PostgreSQL then caches for the rest of the transaction (measuring again per table would
/// read that stale copy and could pass rows of transactions begun since).
public struct SyncBound: Sendable, Hashable {
    /// When it was measured (the write-db's clock).
    public var start: Date
    /// The watermark limit.
    public var bound: Date

    /// Measures the bound on the write-db of `session` (any schema: the bound is per database).
    ///
    /// - Throws: ``KTGraphError/Code/syncUnsafe`` when sessions of other roles are hidden from
    ///   this role in `pg_stat_activity` (grant it `pg_read_all_stats`).
    public static func measure(on session: DatabaseSession, logger: Logger) async throws -> SyncBound {
        try await session.withTransaction(logger: logger) { try await SyncBound(measuring: $0, label: "write-db") }
    }

    init(measuring w: PostgresTransaction, label: String) async throws {
        // Sessions of roles this one is not a member of show no `xact_start` (and no state or
        // query) unless it has `pg_read_all_stats`; min() would skip them and the watermark
        // could pass a row such a session has not committed yet. Such a session is refused.
        let row = try await w.query(
            """
            SELECT clock_timestamp(), least(clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity
                WHERE datname = current_database() AND (backend_xid IS NOT NULL OR state = 'active') AND pid <> pg_backend_pid())),
                (SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND usesysid IS NOT NULL AND query = '<insufficient privilege>'),
                current_user::text
            """
        ).first
        let hidden = try row?.decode(2, as: Int.self) ?? 0
        guard hidden == 0 else {
            let role = try row?.decode(3, as: String.self) ?? "the sync role"
            throw KTGraphError(
                code: .syncUnsafe,
                message:
                    "the sync of \(label) cannot see \(hidden) write-db session(s) of other roles in pg_stat_activity, so it cannot tell which writes are still uncommitted; grant the sync role pg_read_all_stats (GRANT pg_read_all_stats TO \(role)) or sync as the role that writes"
            )
        }
        start = try row?.decode(0, as: Date.self) ?? Date()
        bound = try row?.decode(1, as: Date.self) ?? Date(timeIntervalSince1970: 0)
    }
}

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
        var query: PostgresQuery = "SELECT min(changed), (SELECT count(*) FILTER (WHERE status = 'pending') FROM \(writeDB.syncFailures) WHERE graph_slug = \(graphSlug)), "
        query.append("(SELECT count(*) FILTER (WHERE status = 'abandoned') FROM \(writeDB.syncFailures) WHERE graph_slug = \(graphSlug)) FROM (")
        for (index, table) in Self.watermarkedTables.enumerated() {
            if index > 0 { query.append(" UNION ALL ") }
            query.append("SELECT min(\(unsafeRaw: Self.changeColumn(table))) AS changed " + aboveWatermark(table))
        }
        query.append(") AS changes")
        let row = try await writeDatabase.query(query, logger: logger).first
        return SyncStatus(
            oldestUnsyncedChange: try row?.decode(0, as: Date?.self),
            pending: try row?.decode(1, as: Int.self) ?? 0,
            deadLetters: try row?.decode(2, as: Int.self) ?? 0)
    }
}

extension SyncEngine {
    /// What a cycle has to do (see ``pendingWork(_:dueBefore:takingLock:)``).
    struct PendingWork {
        /// Whether the cycle holds the graph's sync lock.
        var locked: Bool
        /// The tables with rows above their watermark, with the watermark.
        var watermarks: [WriteTable: Date] = [:]
        /// Whether queued rows are due for a retry.
        var retriesDue = false
        /// Whether the retry queue holds any row of the graph.
        var failuresQueued = false
    }

    /// The tables with a watermark: the synced tables and the tombstones.
    static let watermarkedTables = tables + [.tombstones]

    /// The column a table's watermark follows.
    static func changeColumn(_ table: WriteTable) -> String { table == .tombstones ? "deleted_at" : "updated_at" }

    /// `FROM <table> WHERE <change column> > <its watermark>`: the table's rows not synced yet.
    func aboveWatermark(_ table: WriteTable) -> PostgresQuery {
        let column = Self.changeColumn(table)
        return "FROM \(writeDB[table]) WHERE \(unsafeRaw: column) > "
            + "coalesce((SELECT last_synced_at FROM \(writeDB.syncWatermarks) WHERE table_name = \(table.name) AND graph_slug = \(graphSlug)), '-infinity'::timestamptz)"
    }

    /// What a cycle has to do, read in one statement: the tables (tombstones included) with rows
    /// above their watermark, with that watermark, and whether retries are due. A cycle walks
    /// only those tables, so a graph with few changes costs a few round trips, not two per table.
    ///
    /// `failuresQueued` says whether the retry queue holds any row of this graph: when it holds
    /// none, rows applied now have no queue entry to clear.
    /// With `takingLock`, the same statement takes the graph's sync lock (`locked` says whether
    /// it got it; the results are used only then). Its snapshot may predate the lock: a cycle that
    /// committed in between is seen by the cycle's later statements, and re-reading rows behind
    /// a watermark only applies them again, which is idempotent.
    func pendingWork(_ w: PostgresTransaction, dueBefore cycleStart: Date, takingLock: Bool) async throws -> PendingWork {
        // The graph's watermarks are read once (a CTE), not twice per table: planning this
        // statement is most of an idle cycle's cost, and every graph's cycle plans it anew.
        var query: PostgresQuery = "WITH w AS MATERIALIZED (SELECT table_name, last_synced_at FROM \(writeDB.syncWatermarks) WHERE graph_slug = \(graphSlug)) "
        if takingLock {
            query.append("SELECT 'sync_lock'::text, NULL::timestamptz WHERE pg_try_advisory_xact_lock(hashtextextended(\(Self.lockName(graphSlug: graphSlug)), 0)) UNION ALL ")
        }
        for table in Self.watermarkedTables {
            query.append("SELECT \(table.name)::text, coalesce(m.at, 'epoch'::timestamptz) FROM (SELECT (SELECT last_synced_at FROM w WHERE table_name = \(table.name)) AS at) m ")
            query.append("WHERE EXISTS (SELECT 1 FROM \(writeDB[table]) WHERE \(unsafeRaw: Self.changeColumn(table)) > coalesce(m.at, '-infinity'::timestamptz)) UNION ALL ")
        }
        query.append(
            """
            SELECT 'retries_due', NULL WHERE EXISTS (SELECT 1 FROM \(writeDB.syncFailures)
                WHERE graph_slug = \(graphSlug) AND status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= \(cycleStart)))
            UNION ALL SELECT 'queued', NULL WHERE EXISTS (SELECT 1 FROM \(writeDB.syncFailures) WHERE graph_slug = \(graphSlug))
            """)
        var work = PendingWork(locked: !takingLock)
        for row in try await w.query(query).rows {
            switch try row.decode(0, as: String.self) {
            case "sync_lock": work.locked = true
            case "retries_due": work.retriesDue = true
            case "queued": work.failuresQueued = true
            case let name: if let table = WriteTable.named(name) { work.watermarks[table] = try row.decode(1, as: Date.self) }
            }
        }
        return work
    }
}
