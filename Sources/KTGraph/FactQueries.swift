import Foundation
import KTDB

/// The fact reads both engines share, written once over a facts table: `write_facts` for
/// ``WorkerGraphEngine`` (its session's `search_path`), the graph's qualified `facts` for
/// ``ReadGraphEngine``. The two tables share these columns.
enum FactQueries {
    static let columns = "id, content, fact_type, created_at"

    /// Facts by id (missing ones left out).
    static func byIDs(_ ids: [UUID], in table: TableName) -> PostgresQuery {
        "SELECT \(unsafeRaw: columns) FROM \(table) WHERE id = ANY(\(ids.map(\.uuidString))::uuid[])"
    }

    /// Facts containing `text` (case-insensitive), of `factType` if given, newest first.
    static func containing(_ text: String, factType: String?, limit: Int, in table: TableName) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: columns) FROM \(table) WHERE content ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\'
          AND (\(factType)::text IS NULL OR fact_type = \(factType)) ORDER BY created_at DESC, id LIMIT \(limit)
        """
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    static func trigram(_ text: String, threshold: Double, limit: Int, in table: TableName) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: columns) FROM \(table) WHERE similarity(content, \(text)) >= \(threshold)
        ORDER BY similarity(content, \(text)) DESC, id LIMIT \(limit)
        """
    }

    static func facts(_ result: PostgresResult) throws(KTDBError) -> [GraphFact] {
        try result.rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }
}

extension WorkerGraphEngine {
    /// `write_facts`, resolved by the write session's `search_path`.
    static let writeFacts = TableName("write_facts", in: .public)
}
