import Foundation
import KTDB
import KTQdrant
import Logging

/// Where a graph's facts come from, in graph-db: raw sources and fact sources.
struct ReadSourceStore: ReaderStore {
    let context: ReaderContext

    /// The raw source with `id`, or `nil`.
    func rawSource(id: UUID) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE id = \(id)")
            .first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    private var factSourceSelect: PostgresQuery {
        """
        SELECT s.id, s.fact_id, s.raw_source_id, r.uri, r.title, s.context_snippet, s.attribution, s.author_person, s.author_org
        FROM \(table.factSources) s JOIN \(table.rawSources) r ON r.id = s.raw_source_id
        """
    }

    /// A fact's sources, by URI.
    func factSources(of factID: UUID) async throws -> [GraphFactSource] {
        try await run(factSourceSelect + " WHERE s.fact_id = \(factID) ORDER BY r.uri, s.id").rows.map { row throws(KTDBError) in try GraphFactSource(row: row) }
    }

    /// A node's facts, each with its sources (two statements, whatever the number of facts).
    func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] {
        try await withSources(try await factStore.nodeFacts(of: nodeID))
    }

    /// `facts`, each with its sources, in one statement.
    func withSources(_ facts: [GraphFact]) async throws -> [FactWithSources] {
        guard !facts.isEmpty else { return [] }
        let sources = Dictionary(
            grouping: try await run(factSourceSelect + " WHERE s.fact_id = ANY(\(facts.map(\.id.uuidString))::uuid[]) ORDER BY r.uri, s.id")
                .rows.map { row throws(KTDBError) in try GraphFactSource(row: row) }, by: \.factID)
        return facts.map { FactWithSources(fact: $0, sources: sources[$0.id] ?? []) }
    }
}
