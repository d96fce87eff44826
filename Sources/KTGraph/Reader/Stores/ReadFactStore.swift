import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's facts in graph-db: by id, by node, lists and rejections.
struct ReadFactStore: ReaderStore {
    let context: ReaderContext

    /// A page of a node's facts (oldest first): at most `limit` from `offset`.
    func nodeFacts(of nodeID: UUID, offset: Int, limit: Int?) async throws -> [GraphFact] {
        try await run(
            """
            SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.nodeFacts) nf JOIN \(table.facts) f ON f.id = nf.fact_id
            WHERE nf.node_id = \(nodeID) ORDER BY f.created_at, f.id LIMIT \(limit) OFFSET \(max(0, offset))
            """
        ).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// Facts linked to a node.
    func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] {
        try await nodeFacts(of: nodeID, offset: 0, limit: nil)
    }

    /// Facts by id (missing ones left out).
    func facts(ids: [UUID]) async throws -> [GraphFact] {
        guard !ids.isEmpty else { return [] }
        return try FactQueries.facts(try await run(FactQueries.byIDs(ids, in: table.facts)))
    }

    /// Nodes a fact is linked to.
    func factNodes(of factID: UUID) async throws -> [GraphNode] {
        try await nodeStore.nodes("WHERE id IN (SELECT node_id FROM \(table.nodeFacts) WHERE fact_id = \(factID)) ORDER BY concept")
    }

    private func factFilter(search: String?, factType: FactType?, authorOrg: String?, sourceDomain: String?) -> PostgresQuery {
        """
        WHERE (\(search.map(escapeLike))::text IS NULL OR f.content ILIKE '%' || \(search.map(escapeLike)) || '%' ESCAPE '\\')
          AND (\(factType)::text IS NULL OR f.fact_type = \(factType))
          AND (\(authorOrg)::text IS NULL OR EXISTS (SELECT 1 FROM \(table.factSources) s WHERE s.fact_id = f.id AND s.author_org ILIKE '%' || \(authorOrg.map(escapeLike)) || '%' ESCAPE '\\'))
          AND (\(sourceDomain)::text IS NULL OR EXISTS (SELECT 1 FROM \(table.factSources) s JOIN \(table.rawSources) r ON r.id = s.raw_source_id
                WHERE s.fact_id = f.id AND substring(r.uri from '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+)') ILIKE '%' || \(sourceDomain.map(escapeLike)) || '%' ESCAPE '\\'))
        """
    }

    /// A page of facts, newest first, filtered by content substring, type, a source author organisation
    /// and a source domain.
    func listFacts(offset: Int = 0, limit: Int = 20, search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> [GraphFact] {
        try await run(
            "SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.facts) f "
                + factFilter(search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain)
                + " ORDER BY f.created_at DESC, f.id OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))"
        )
        .rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// The number of facts matching the filters of
    /// ``listFacts(offset:limit:search:factType:authorOrg:sourceDomain:)``.
    func countFacts(search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.facts) f " + factFilter(search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain))
            .first?.decode(0, as: Int.self) ?? 0
    }

    /// Facts rejected for a node.
    func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> {
        Set(try await run("SELECT fact_id FROM \(table.nodeFactRejections) WHERE node_id = \(nodeID)").uuids(0))
    }
}
