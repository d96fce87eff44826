import Foundation
import KTCore
public import KTDB
public import Logging

/// Copies one graph from write-db to graph-db.
///
/// What a cycle does, in order:
/// 1. Takes the graph's sync lock (a transaction-level advisory lock in write-db, held for the
///    cycle), so only one process syncs a graph at a time; another caller gets
///    ``KTGraphError/Code/syncBusy``.
/// 2. Walks the tables in the original's order (raw sources, prohibited chunks, facts and their
///    sources, nodes, edges, dimensions, convergence reports, counters, versions, LLM usage):
///    rows with `updated_at` above the table's watermark, `batchSize` at a time (rows sharing the
///    last timestamp are taken together) and up to ``batchesPerTable`` batches a table, each
///    batch set-based in a savepoint, and again one row at a time (a savepoint each) if the batch
///    fails as a whole. While graph-db applies a batch, write-db reads the next one.
/// 3. Applies tombstones (deletions recorded by a write-db trigger) the same way.
/// 4. Retries due rows of the deferral and dead-letter queue (`sync_failures`).
/// 5. Refreshes the denormalised counters of the nodes it touched (per batch).
///
/// Fixes over the original:
/// - Applying a row makes graph-db match the **current** write-db state of that key: a missing
///   row deletes, `fact_ids` are mirrored exactly (un-links propagate), rejected facts are left out.
/// - A row whose parent is not in graph-db yet (an edge whose node has not arrived) is
///   **deferred**: parked in `sync_failures` and retried every cycle, never left behind by the
///   watermark. Failures go to the same queue with exponential backoff and are abandoned after
///   `maxRetries`, recording the graph slug.
/// - The watermark never passes a write that may still commit: it stays below the start of the
///   oldest write transaction in progress in write-db and below the moment that was measured.
///   When write-db sessions of other roles are hidden from the sync role (it lacks
///   `pg_read_all_stats`), the cycle is refused with ``KTGraphError/Code/syncUnsafe`` instead.
/// - When a node or fact arrives, the junctions and edges that were waiting for it are applied.
public struct SyncEngine: Sendable {
    /// The write-db session (schema-bound).
    public let writeSession: DatabaseSession
    /// The graph-db session (schema-bound).
    public let graphSession: DatabaseSession
    /// The graph's slug (watermarks and failures are recorded per slug).
    public let graphSlug: String
    /// Batch size, retries and backoff.
    public let settings: SyncSettings
    /// Sessions on the two pools that set no `search_path`: the sync's SQL names the graph's
    /// tables with their schema (``writeDB``, ``graphDB``).
    let writeDatabase: DatabaseSession, graphDatabase: DatabaseSession
    /// The graph's write-db tables.
    let writeDB: WriteTables
    /// The graph's graph-db tables.
    let graphDB: GraphTables
    let logger: Logger

    /// Creates an engine.
    public init(writeSession: DatabaseSession, graphSession: DatabaseSession, graphSlug: String, settings: SyncSettings = SyncSettings(), logger: Logger) {
        self.writeSession = writeSession
        self.graphSession = graphSession
        writeDatabase = DatabaseSession(pool: writeSession.pool)
        graphDatabase = DatabaseSession(pool: graphSession.pool)
        writeDB = WriteTables(writeSession.schema)
        graphDB = GraphTables(graphSession.schema)
        self.graphSlug = graphSlug
        self.settings = settings
        var logger = logger
        logger[metadataKey: "kt.graph"] = "\(graphSlug)"
        self.logger = logger
    }

    /// The tables, in the order they are applied.
    public static let tables = syncers.map(\.table)

    /// Runs one cycle.
    ///
    /// - Throws: ``KTGraphError/Code/syncBusy`` when another process is syncing this graph;
    ///   database errors outside a row (a row's own error goes to the queue instead).
    @discardableResult
    public func syncCycle() async throws -> Report {
        try await syncCycle(bound: nil)
    }

    /// Runs one cycle with a watermark bound measured earlier on the same write-db (see
    /// ``SyncBound``): a service syncing many graphs of one database measures it once per pass.
    @discardableResult
    public func syncCycle(bound shared: SyncBound?) async throws -> Report {
        // The batch statements are costed high enough to trigger JIT compilation, which costs
        // more than they take to run. A batch is the first rows of a walk of the `updated_at`
        // index; after a burst of writes, statistics that still describe a small table make
        // the planner read the whole table and sort it instead, once per batch. No read of the
        // sync needs a sort where an index gives the order, so sorting is priced out.
        try await writeDatabase.withTransaction(setup: "SET LOCAL jit = off; SET LOCAL enable_sort = off", logger: logger) { lock in
            let busy = KTGraphError(code: .syncBusy, message: "another process is syncing graph '\(graphSlug)'")
            var report = Report()
            let measured: SyncBound, work: PendingWork
            if let shared {
                // The lock is taken by the statement that reads the pending work (one round trip).
                measured = shared
                work = try await pendingWork(lock, dueBefore: shared.start, takingLock: true)
                guard work.locked else { throw busy }
            } else {
                let acquired =
                    try await lock.query("SELECT pg_try_advisory_xact_lock(hashtextextended(\(Self.lockName(graphSlug: graphSlug)), 0))")
                    .first?.decode(0, as: Bool.self) ?? false
                guard acquired else { throw busy }
                measured = try await SyncBound(measuring: lock, label: "graph '\(graphSlug)'")
                work = try await pendingWork(lock, dueBefore: measured.start, takingLock: false)
            }
            let (cycleStart, bound) = (measured.start, measured.bound)
            for table in Self.tables {
                if let since = work.watermarks[table] { try await syncTable(table, lock, since: since, bound: bound, clearing: work.failuresQueued, &report) }
            }
            if let since = work.watermarks[.tombstones] { try await syncTombstones(lock, since: since, bound: bound, &report) }
            if work.retriesDue { try await retryQueue(lock, &report, dueBefore: cycleStart) }
            logger.debug(
                "sync cycle done",
                metadata: [
                    "kt.applied": "\(report.totalApplied)", "kt.deferred": "\(report.deferred)", "kt.failed": "\(report.failed)",
                ])
            return report
        }
    }

    /// Runs cycles until one applies nothing (or `maxCycles`); returns the summed report.
    ///
    /// - Parameter busyRetry: when set, a cycle refused because another process syncs the graph
    ///   (``KTGraphError/Code/syncBusy``) is tried again after this long (counted as a cycle);
    ///   when nil, that error is thrown.
    @discardableResult
    public func syncUntilIdle(maxCycles: Int = 100, busyRetry: Duration? = nil) async throws -> Report {
        var total = Report()
        for _ in 0..<maxCycles {
            let report: Report
            do {
                report = try await syncCycle()
            } catch let error as KTGraphError where error.code == .syncBusy {
                guard let busyRetry else { throw error }
                try await Task.sleep(for: busyRetry)
                continue
            }
            total.add(report)
            if report.totalApplied == 0 { break }
        }
        return total
    }

    // MARK: Watermarks

    private func setWatermark(_ table: WriteTable, _ value: Date, on runner: any PostgresQueryRunner) async throws {
        try await runner.run(
            """
            INSERT INTO \(writeDB.syncWatermarks) AS m (table_name, graph_slug, last_synced_at) VALUES (\(table.name), \(graphSlug), \(value))
            ON CONFLICT (table_name, graph_slug) DO UPDATE SET last_synced_at = GREATEST(m.last_synced_at, EXCLUDED.last_synced_at)
            """, logger: logger)
    }

    // MARK: Tables

    /// Applies a table's changed rows batch by batch. While graph-db applies one batch, write-db
    /// reads the next (when this one was full, has not reached the watermark's bound, and the
    /// table has batches left this cycle), and the previous batch's queue entries and watermark
    /// are written (in batch order).
    /// - Parameter clearing: whether the retry queue may hold rows of this graph (to be cleared
    ///   as they are applied); without any, no statement is spent on it.
    private func syncTable(_ table: WriteTable, _ w: PostgresTransaction, since start: Date, bound: Date, clearing: Bool, _ report: inout Report) async throws {
        // Structured: the read-ahead is an `async let` of each round, the bookkeeping one child
        // task that takes the batches' outcomes in order. Both end (cancelled, then awaited)
        // before this returns or throws, so no statement outlives the cycle's transaction.
        let (earlier, pending) = AsyncStream<Bookkeeping>.makeStream()
        report.add(
            try await withThrowingTaskGroup(of: Report.self) { group in
                group.addTask {
                    var done = Report()
                    for await item in earlier {
                        try Task.checkCancellation()
                        done.add(item.applied)
                        done.add(try await record(item.outcomes, retrying: false, clearing: clearing, on: writeDatabase))
                        if let target = item.target { try await setWatermark(table, target, on: writeDatabase) }
                    }
                    return done
                }
                defer { pending.finish() }
                var total = Report(), mark = start, count = 0
                var batch = try await readBatch(table, after: start, watermark: start, w)
                while let current = batch {
                    count += 1
                    let last = current.last
                    let (readsAhead, reachedLimit) = SyncPlan.afterBatch(
                        rows: current.rows.count, batchSize: settings.batchSize, last: last, bound: bound, batchNumber: count, batchesPerTable: Self.batchesPerTable)
                    if reachedLimit { total.reachedBatchLimit = true }
                    async let ahead: Batch? = readsAhead ? readBatch(table, after: last, watermark: start, w) : nil
                    var applied = Report()
                    let outcomes = try await apply(current.rows.map { (table.name, $0.key) }, w, &applied, prefetched: current.prefetched.map { [table.name: $0] } ?? [:])
                    let target = SyncPlan.watermarkTarget(from: mark, through: last, bound: bound)
                    if let target { mark = target }
                    guard readsAhead else {
                        // The table's last batch: its bookkeeping joins the cycle's transaction (no
                        // read ahead is using it), after the earlier batches' in order.
                        pending.finish()
                        total.add(try await group.next() ?? Report())
                        total.add(applied)
                        total.add(try await record(outcomes, retrying: false, clearing: clearing, on: w))
                        if let target { try await setWatermark(table, target, on: w) }
                        _ = try await ahead
                        return total
                    }
                    // While the next batch is read on the cycle's transaction, the bookkeeping runs
                    // on a connection of its own.
                    pending.yield(Bookkeeping(applied: applied, outcomes: outcomes, target: target))
                    batch = try await ahead
                }
                pending.finish()
                total.add(try await group.next() ?? Report())
                return total
            })
    }

    /// A batch's queue entries and watermark, written beside the next batch's read.
    private struct Bookkeeping: Sendable {
        var applied: Report
        var outcomes: [Outcome]
        var target: Date?
    }

    private func syncTombstones(_ w: PostgresTransaction, since: Date, bound: Date, _ report: inout Report) async throws {
        let rows = try await w.query(
            """
            SELECT table_name, record_key, deleted_at FROM \(writeDB.tombstones) WHERE deleted_at > \(since) ORDER BY deleted_at, id LIMIT \(settings.batchSize)
            """
        ).rows.map { row throws(KTDBError) in
            (try row.decode("table_name", as: String.self), try row.decode("record_key", as: String.self), try row.decode("deleted_at", as: Date.self))
        }
        guard let last = rows.last else { return }
        // A tombstone applies the current state of its key: if the row was re-created, this upserts it.
        let outcomes = try await apply(rows.map { ($0.0, $0.1) }, w, &report)
        for outcome in outcomes where outcome.result == .applied { report.deleted += 1 }
        report.add(try await record(outcomes.filter { $0.result != .applied }, retrying: false, on: w))
        if let target = SyncPlan.watermarkTarget(from: since, through: last.2, bound: bound) { try await setWatermark(.tombstones, target, on: w) }
        // Tombstones a day behind the watermark are no longer needed.
        try await w.query("DELETE FROM \(writeDB.tombstones) WHERE deleted_at <= \(since)::timestamptz - interval '1 day'")
    }

    // MARK: Queue

    private func retryQueue(_ w: PostgresTransaction, _ report: inout Report, dueBefore cycleStart: Date) async throws {
        let due = try await w.query(
            """
            SELECT table_name, record_key FROM \(writeDB.syncFailures)
            WHERE graph_slug = \(graphSlug) AND status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= \(cycleStart))
            ORDER BY next_retry_at NULLS FIRST LIMIT \(settings.batchSize)
            """
        ).rows.map { row throws(KTDBError) in (try row.decode("table_name", as: String.self), try row.decode("record_key", as: String.self)) }
        guard !due.isEmpty else { return }
        let outcomes = try await apply(due, w, &report)
        report.add(try await record(outcomes, retrying: true, on: w))
    }

    enum Result: Equatable { case applied, deferred(String), failed(String) }
    struct Outcome { var table: String; var key: String; var result: Result }

    /// Records outcomes: applied rows leave the queue; deferred and failed rows enter it or
    /// move on in it (backoff doubling; abandoned at `maxRetries`).
    /// Returns the outcomes' figures.
    private func record(_ outcomes: [Outcome], retrying: Bool, clearing: Bool = true, on runner: any PostgresQueryRunner) async throws -> Report {
        var (report, cleared, queued) = SyncPlan.queueChanges(outcomes, retrying: retrying, retryBase: settings.retryBase.timeInterval)
        if !queued.isEmpty {
            let abandoned = try await runner.run(
                """
                INSERT INTO \(writeDB.syncFailures) AS f (id, table_name, record_key, error_message, retry_count, status, graph_slug, next_retry_at)
                SELECT gen_random_uuid(), b.table, b.key, b.reason, 1, 'pending', \(graphSlug), now() + make_interval(secs => b.base * 2)
                FROM jsonb_to_recordset(\(try Self.json(queued))) AS b("table" text, key text, reason text, base float8)
                ON CONFLICT (table_name, record_key, graph_slug) DO UPDATE SET
                    retry_count = f.retry_count + 1, error_message = EXCLUDED.error_message, updated_at = now(),
                    next_retry_at = now() + (EXCLUDED.next_retry_at - now()) * power(2, f.retry_count)::float8,
                    status = CASE WHEN f.retry_count + 1 >= \(settings.maxRetries) THEN 'abandoned' ELSE 'pending' END
                RETURNING table_name, record_key, status, error_message
                """, logger: logger
            ).rows.filter { row in (try? row.decode(2, as: String.self)) == "abandoned" }
            for row in abandoned {
                report.abandoned += 1
                let table = try row.decode(0, as: String.self), key = try row.decode(1, as: String.self), reason = try row.decode(3, as: String.self)
                logger.warning("sync gave up on a row", metadata: ["kt.table": "\(table)", "kt.key": "\(key)", "kt.reason": "\(reason)"])
            }
        }
        if clearing, !cleared.isEmpty {
            try await runner.run(
                """
                DELETE FROM \(writeDB.syncFailures) WHERE graph_slug = \(graphSlug)
                  AND (table_name, record_key) IN (SELECT * FROM unnest(\(cleared.map(\.0))::text[], \(cleared.map(\.1))::text[]))
                """, logger: logger)
        }
        return report
    }

    // MARK: Applying rows

    /// Applies the items in one graph-db transaction, table by table in the sync order, each
    /// table's keys set-based, then refreshes the counters of the nodes touched. Nearly every batch
    /// applies whole, so the first attempt takes no savepoints (two round trips fewer per table).
    /// If it fails, its transaction is rolled back and the items are applied again in a new one:
    /// each table's keys set-based in a savepoint and, if that fails, one key at a time, each in a
    /// savepoint of its own, so one bad row fails alone.
    private func apply(
        _ items: [(String, String)], _ w: PostgresTransaction, _ report: inout Report, prefetched: [String: Prefetched] = [:]
    ) async throws -> [Outcome] {
        guard !items.isEmpty else { return [] }
        var keysByTable: [String: [String]] = [:], seen: Set<[String]> = []
        for (table, key) in items where seen.insert([table, key]).inserted { keysByTable[table, default: []].append(key) }
        let names = Self.tables.map(\.name), order = names + keysByTable.keys.filter { !names.contains($0) }.sorted()
        // One attempt in one graph-db transaction; with `savepoints`, a failing table falls back
        // to its keys one at a time. Returns the outcomes and how many tables fell back.
        func attempt(savepoints: Bool) async throws -> ([Outcome], rowByRow: Int) {
            try await graphDatabase.withTransaction(setup: Self.graphSetup, logger: logger) { transaction in
                var results: [String: Outcomes] = [:], touched: Set<UUID> = [], rowByRow = 0
                for table in order {
                    guard let keys = keysByTable[table] else { continue }
                    guard savepoints else {
                        results[table] = try await applyBatch(table, keys, w, transaction, prefetched: prefetched[table], touched: &touched)
                        continue
                    }
                    do {
                        var batchTouched: Set<UUID> = []
                        results[table] = try await transaction.withSavepoint { t in
                            try await applyBatch(table, keys, w, t, prefetched: prefetched[table], touched: &batchTouched)
                        }
                        touched.formUnion(batchTouched)
                        continue
                    } catch {
                        logger.debug("sync batch failed; applying row by row", metadata: ["kt.table": "\(table)", "kt.error": "\(Self.message(error))"])
                    }
                    rowByRow += 1
                    var outcomes: Outcomes = [:]
                    for key in keys {
                        do {
                            var rowTouched: Set<UUID> = []
                            outcomes[key] = try await transaction.withSavepoint { t in try await applyBatch(table, [key], w, t, touched: &rowTouched) }[key]
                            touched.formUnion(rowTouched)
                        } catch {
                            logger.debug("sync row failed", metadata: ["kt.table": "\(table)", "kt.key": "\(key)", "kt.error": "\(Self.message(error))"])
                            outcomes[key] = .failed(Self.message(error))
                        }
                    }
                    results[table] = outcomes
                }
                try await GraphStats.refresh(Array(touched), in: graphDB, transaction)
                return (items.map { table, key in Outcome(table: table, key: key, result: results[table]?[key] ?? .failed("not applied")) }, rowByRow)
            }
        }
        do {
            return try await attempt(savepoints: false).0
        } catch  where !Task.isCancelled {
            logger.debug("sync batch failed; applying it again with savepoints", metadata: ["kt.error": "\(Self.message(error))"])
        }
        let (applied, rowByRow) = try await attempt(savepoints: true)
        report.rowByRowBatches += rowByRow
        return applied
    }

    /// Run with `BEGIN` in graph-db: JIT compiling the batch statements costs more than running
    /// them. `kt.writer` names the sync as the writer, which a move's write pause lets through.
    private static let graphSetup: StaticString = "SET LOCAL jit = off; SET LOCAL kt.writer = 'sync'"

    /// The name of graph `graphSlug`'s sync lock: a transaction-level advisory lock in write-db
    /// on `hashtextextended(name, 0)`, held by a cycle from its first statement to its commit.
    /// Whoever holds it (a move's catch-up) keeps every sync of the graph waiting.
    public static func lockName(graphSlug: String) -> String { "kt-sync:" + graphSlug }

    private static func message(_ error: any Error) -> String { (error as? KTDBError)?.message ?? String(describing: error) }
}
