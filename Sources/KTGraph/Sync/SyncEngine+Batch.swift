import Foundation
import KTDB

/// The set-based path of the sync: one table's keys applied with a handful of statements
/// (nodes travel to graph-db as one array per column, expanded by `unnest`; the other tables'
/// rows as one `jsonb` parameter, expanded by `jsonb_to_recordset`), instead of several round
/// trips per row. It gives the same result as applying each key alone
/// (``SyncEngine`` falls back to that path, row by row in savepoints, when a batch fails).
extension SyncEngine {
    typealias Outcomes = [String: Result]

    /// Applies `keys` of `table` in graph-db transaction `t`, reading write-db through `w`.
    /// Rows already read from write-db with the batch are used when they are `keys`' rows.
    func applyBatch(
        _ table: String, _ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction, prefetched: Prefetched? = nil, touched: inout Set<UUID>
    ) async throws -> Outcomes {
        switch (table, prefetched) {
        case (WriteTable.nodes.name, .nodes(let rows)) where rows.keys == keys: return try await applyNodes(rows, w, t, touched: &touched)
        default: break
        }
        guard let syncer = Self.syncerByTable[table] else {
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, Result.failed("unknown table \(table)")) })
        }
        return try await syncer.apply(self, keys, w, t, &touched)
    }

    /// A batch's write-db rows, read with the batch: the sync reads the next batch of a table
    /// while graph-db applies the current one.
    enum Prefetched: Sendable {
        case nodes(NodeRows)
    }

    // MARK: Helpers

    /// Which of `ids` (lower-case UUID text) are in graph-db's `table`, found by primary key
    /// one by one (`LATERAL … OFFSET 0`) whatever the planner's statistics say about the table.
    func existing(_ table: GraphTable, _ ids: [String], _ t: PostgresTransaction) async throws -> Set<String> {
        let found = try await t.query(
            """
            SELECT x.id FROM unnest(\(Array(Set(ids)))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id FROM \(graphDB[table]) WHERE id = k.id OFFSET 0) x
            """
        ).uuids(0)
        return Set(found.map(\.postgresText))
    }

    /// The write-db keys among `keys` whose rows (by id, uuid5 of the key) graph-db's `table` lacks.
    func missing(_ keys: [String], from table: GraphTable, _ t: PostgresTransaction) async throws -> [String] {
        guard !keys.isEmpty else { return [] }
        let ids = keys.map { GraphKeys.id(forKey: $0).postgresText }
        let have = try await existing(table, ids, t)
        return zip(keys, ids).filter { !have.contains($0.1) }.map(\.0)
    }

    /// Makes `junction` hold exactly `wanted` for `owners` (pairs whose fact is not in graph-db are left out).
    func mirrorJunction(_ junction: GraphTable, owner: String, owners: [String], wanted: [(String, String)], _ t: PostgresTransaction) async throws {
        let wantedOwners = wanted.map(\.0), wantedFacts = wanted.map(\.1)
        try await t.query(
            """
            WITH stale AS (
                SELECT j.o, j.f FROM unnest(\(owners)::uuid[]) AS k(id)
                CROSS JOIN LATERAL (SELECT \(unsafeRaw: owner) AS o, fact_id AS f FROM \(graphDB[junction]) WHERE \(unsafeRaw: owner) = k.id OFFSET 0) j
                EXCEPT SELECT * FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]))
            DELETE FROM \(graphDB[junction]) j USING stale WHERE j.\(unsafeRaw: owner) = stale.o AND j.fact_id = stale.f
            """)
        guard !wanted.isEmpty else { return }
        try await t.query(
            """
            INSERT INTO \(graphDB[junction]) (\(unsafeRaw: owner), fact_id)
            SELECT w.o, w.f FROM unnest(\(wantedOwners)::uuid[], \(wantedFacts)::uuid[]) AS w(o, f)
            CROSS JOIN LATERAL (SELECT id FROM \(graphDB.facts) WHERE id = w.f OFFSET 0) f
            ON CONFLICT DO NOTHING
            """)
    }

    static func allApplied(_ keys: [String]) -> Outcomes {
        Dictionary(keys.map { ($0, Result.applied) }, uniquingKeysWith: { first, _ in first })
    }

    /// JSON object documents (each already JSON text) as one `jsonb` array.
    static func jsonArray(_ documents: [String]) -> PostgresJSON {
        PostgresJSON(text: "[" + documents.joined(separator: ",") + "]")
    }

    /// Rows as one `jsonb` array with snake_case keys (absent keys read as NULL).
    static func json(_ rows: some Encodable) throws -> PostgresJSON {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return PostgresJSON(text: String(decoding: try encoder.encode(rows), as: UTF8.self))
    }
}
