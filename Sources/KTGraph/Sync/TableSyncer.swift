import Foundation
import KTDB

/// How one write-db table reaches graph-db: the column its batches are keyed by, and how a
/// batch of keys applies (each table in its own file under `Sync/Tables`). ``SyncEngine``
/// reads its tables from ``SyncEngine/syncers``, in order, and calls the table's syncer; no
/// code elsewhere picks a table by its name.
struct TableSyncer: Sendable {
    typealias Apply = @Sendable (SyncEngine, [String], PostgresTransaction, PostgresTransaction, inout Set<UUID>) async throws -> SyncEngine.Outcomes

    /// The write-db table.
    let table: WriteTable
    /// The key column (text), by which rows are identified and queued.
    let keyColumn: String
    /// Applies keys in graph-db transaction `t`, reading write-db through `w`; adds the nodes
    /// whose counters need a refresh to `touched`.
    let apply: Apply

    init(table: WriteTable, keyColumn: String, apply: @escaping Apply) {
        self.table = table
        self.keyColumn = keyColumn
        self.apply = apply
    }
}

extension SyncEngine {
    /// The registry: every synced table, in the order they are applied (a row after the rows
    /// it points at: sources before facts' sources, facts before nodes, nodes before edges,
    /// dimensions, reports, counters and versions; LLM usage last).
    static let syncers: [TableSyncer] = [
        .rawSources, .prohibitedChunks, .facts, .factSources, .nodes, .edges, .dimensions, .convergenceReports, .nodeCounters, .nodeVersions, .llmUsage,
    ]

    /// The syncers by table name (the name the queue and the tombstones record).
    static let syncerByTable = Dictionary(uniqueKeysWithValues: syncers.map { ($0.table.name, $0) })
}
