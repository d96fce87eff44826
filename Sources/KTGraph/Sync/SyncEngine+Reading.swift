import Foundation
import KTCore
import KTDB

/// Reading a table's changed rows from write-db, a batch at a time.
extension SyncEngine {
    static func keyColumn(_ table: WriteTable) -> String { syncerByTable[table.name]?.keyColumn ?? "id::text" }

    /// Batches one table may apply per cycle (the cycle then moves on; the next one continues).
    static let batchesPerTable = 20

    /// A batch of a table's changed rows: keys with their `updated_at` (rows sharing the last
    /// timestamp are all taken, so the watermark can move past it), and their write-db rows
    /// when the table's rows are read ahead.
    struct Batch: Sendable {
        var rows: [(key: String, updatedAt: Date)]
        var prefetched: Prefetched?
        var last: Date { rows[rows.count - 1].updatedAt }
    }

    /// Reads the batch after `since`; `watermark` is the table's watermark at the cycle's start.
    /// Ordered by `updated_at` alone (a walk of its index, never a sort): the rows cut off at the
    /// last timestamp are taken by the second query.
    func readBatch(_ table: WriteTable, after since: Date, watermark: Date, _ w: PostgresTransaction) async throws -> Batch? {
        if table == .nodes { return try await readNodeBatch(after: since, watermark: watermark, w) }
        let keyColumn = Self.keyColumn(table)
        var rows = try await w.query(
            """
            SELECT \(unsafeRaw: keyColumn) AS key, updated_at FROM \(writeDB[table]) WHERE updated_at > \(since)
            ORDER BY updated_at LIMIT \(settings.batchSize)
            """
        ).rows.map { row throws(KTDBError) in (key: try row.decode("key", as: String.self), updatedAt: try row.decode("updated_at", as: Date.self)) }
        guard let last = rows.last else { return nil }
        if rows.count == settings.batchSize {
            let ties = try await w.query(
                """
                SELECT \(unsafeRaw: keyColumn) AS key FROM \(writeDB[table]) WHERE updated_at = \(last.updatedAt)
                """
            ).rows.map { row throws(KTDBError) in try row.decode("key", as: String.self) }
            let have = Set(rows.map(\.key))
            rows += ties.filter { !have.contains($0) }.map { (key: $0, updatedAt: last.updatedAt) }
        }
        return Batch(rows: rows)
    }

    /// The nodes' batch: their whole rows are read with the batch (one statement, a second one
    /// for the rows sharing the last timestamp when the batch is full), ready to apply.
    func readNodeBatch(after since: Date, watermark: Date, _ w: PostgresTransaction) async throws -> Batch? {
        var rows = NodeRows(keys: [])
        try await loadNodes(.changedAfter(since, limit: settings.batchSize), into: &rows, w, watermark: watermark)
        guard let last = rows.updatedAt.last else { return nil }
        if rows.presentKeys.count == settings.batchSize {
            try await loadNodes(.changedAt(last, excluding: rows.presentKeys), into: &rows, w, watermark: watermark)
        }
        return Batch(rows: zip(rows.presentKeys, rows.updatedAt).map { (key: $0, updatedAt: $1) }, prefetched: .nodes(rows))
    }
}
