import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's export pages, in key order.
struct ReadExportStore: ReaderStore {
    let context: ReaderContext

    /// Nodes by id, `limit` at a time: pass the last id of a page as `after` for the next
    /// (`list_all_nodes`, without holding the whole graph in memory).
    func exportNodes(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphNode] {
        try Self.checkPage(limit)
        return try await nodeStore.nodes("WHERE (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)")
    }

    /// Edges by id, a page at a time (see ``exportNodes(after:limit:)``).
    func exportEdges(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphEdge] {
        try Self.checkPage(limit)
        return try await edgeStore.edges("WHERE (\(after)::uuid IS NULL OR e.id > \(after)) ORDER BY e.id LIMIT \(limit)")
    }

    /// Facts by id with their sources, a page at a time (see ``exportNodes(after:limit:)``).
    func exportFactsWithSources(after: UUID? = nil, limit: Int = 1000) async throws -> [FactWithSources] {
        try Self.checkPage(limit)
        let facts = try FactQueries.facts(
            try await run(
                """
                SELECT \(unsafeRaw: FactQueries.columns) FROM \(table.facts) WHERE (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
                """))
        return try await sourceStore.withSources(facts)
    }

    private static func checkPage(_ limit: Int) throws(KTGraphError) {
        guard (1...10_000).contains(limit) else { throw KTGraphError(code: .invalidArgument, message: "a page holds 1 to 10000 rows") }
    }
}
