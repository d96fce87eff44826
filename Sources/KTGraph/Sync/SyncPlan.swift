import Foundation

/// The sync's decisions that need no database: how far a watermark moves, whether a table
/// reads another batch, and what a batch's outcomes do to the retry queue. ``SyncEngine``
/// carries them out; `SyncPlanTests` checks them without a server.
enum SyncPlan {
    /// Where a table's watermark moves after applying rows through `last`: to `last`, but
    /// never up to `bound` (rows at or after it are read again next cycle; applying a row twice
    /// is idempotent); `nil` when that is not past `since`.
    static func watermarkTarget(from since: Date, through last: Date, bound: Date) -> Date? {
        let next = min(last, bound.addingTimeInterval(-0.000_001))
        return next > since ? next : nil
    }

    /// What follows a batch of `rows` rows ending at `last`, the `batchNumber`-th of its table
    /// this cycle: another batch is read when this one was full and has not reached the bound,
    /// unless the table used its `batchesPerTable`, which the report then says.
    static func afterBatch(rows: Int, batchSize: Int, last: Date, bound: Date, batchNumber: Int, batchesPerTable: Int) -> (readsAhead: Bool, reachedLimit: Bool) {
        let more = rows >= batchSize && last < bound
        return (more && batchNumber < batchesPerTable, more && batchNumber >= batchesPerTable)
    }

    /// A row for the retry queue: `base` seconds is the first delay, doubled on every retry
    /// (0 for a deferral, retried on the next cycle).
    struct Queued: Encodable, Equatable {
        var table: String, key: String, reason: String, base: Double
    }

    /// What a batch's outcomes do: the counts they add, the keys that leave the queue and the
    /// rows that enter it or move on in it (one per table and key, the last outcome winning).
    static func queueChanges(
        _ outcomes: [SyncEngine.Outcome], retrying: Bool, retryBase: Double
    ) -> (report: SyncEngine.Report, cleared: [(String, String)], queued: [Queued]) {
        var report = SyncEngine.Report(), cleared: [(String, String)] = [], queued: [String: Queued] = [:], order: [String] = []
        for outcome in outcomes {
            let id = outcome.table + "\u{0}" + outcome.key
            switch outcome.result {
            case .applied:
                if retrying { report.recovered += 1 } else if outcome.table != WriteTable.tombstones.name { report.applied[outcome.table, default: 0] += 1 }
                cleared.append((outcome.table, outcome.key))
                continue
            case .deferred(let reason):
                report.deferred += 1
                if queued[id] == nil { order.append(id) }
                queued[id] = Queued(table: outcome.table, key: outcome.key, reason: reason, base: 0)
            case .failed(let reason):
                report.failed += 1
                if queued[id] == nil { order.append(id) }
                queued[id] = Queued(table: outcome.table, key: outcome.key, reason: reason, base: retryBase)
            }
        }
        return (report, cleared, order.compactMap { queued[$0] })
    }
}

// MARK: Dependents

extension SyncPlan {
    /// A parent a row needs in graph-db before it can be applied: the parent's id (`nil`: the
    /// row names none it could use), the ids graph-db has of that kind, and why the row waits
    /// when the parent is missing.
    struct Need {
        var id: String?
        var present: Set<String>
        var reason: String

        var isMet: Bool { id.map(present.contains) ?? false }
    }

    /// Splits rows into those whose every parent is in graph-db and the rest, each deferred with
    /// the reason of its first missing parent (a deferred row waits in the retry queue and is
    /// applied once its parent arrives).
    static func readiness<Row>(_ rows: [Row], needs: (Row) -> [Need]) -> (ready: [Row], deferred: [(row: Row, reason: String)]) {
        var ready: [Row] = [], deferred: [(row: Row, reason: String)] = []
        for row in rows {
            if let unmet = needs(row).first(where: { !$0.isMet }) {
                deferred.append((row, unmet.reason))
            } else {
                ready.append(row)
            }
        }
        return (ready, deferred)
    }

    /// What waits for the nodes of an upserted batch that are new to graph-db. Only a new node
    /// can have children, perspectives, edges, dimensions, counters, reports or versions waiting
    /// for it (a node already there had them applied when they arrived).
    ///
    /// - Parameters:
    ///   - keys: the batch's node keys, in the order of `ids`.
    ///   - existing: the ids graph-db had before the upsert.
    ///   - predicted: what write-db returned with the rows, for the nodes created since the
    ///     table's watermark (`createdSinceWatermark`).
    /// - Returns: the predicted dependents of the new nodes, and the new nodes whose dependents
    ///   must still be looked up (created before the watermark, yet new to graph-db: for
    ///   example re-created after a deletion).
    static func newNodeDependents(
        keys: [String], ids: [UUID], existing: Set<UUID>, predicted: SyncEngine.Dependents, createdSinceWatermark: [String]
    ) -> (waiting: SyncEngine.Dependents, lookUp: [String]) {
        let newKeys = zip(keys, ids).filter { !existing.contains($0.1) }.map(\.0)
        let predictedKeys = Set(createdSinceWatermark)
        return (predicted.only(ofNodes: Set(newKeys)), newKeys.filter { !predictedKeys.contains($0) })
    }
}
