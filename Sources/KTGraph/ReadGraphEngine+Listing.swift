public import Foundation
import KTDB

/// Fact and edge listings, fact administration, stances and the fact-based node searches of
/// `ReadGraphEngine`.
extension ReadGraphEngine {
    // MARK: Facts

    private func factFilter(search: String?, factType: FactType?, authorOrg: String?, sourceDomain: String?) -> PostgresQuery {
        """
        WHERE (\(search.map(escapeLike))::text IS NULL OR f.content ILIKE '%' || \(search.map(escapeLike)) || '%' ESCAPE '\\')
          AND (\(factType)::text IS NULL OR f.fact_type = \(factType))
          AND (\(authorOrg)::text IS NULL OR EXISTS (SELECT 1 FROM \(table.factSources) s WHERE s.fact_id = f.id AND s.author_org ILIKE '%' || \(authorOrg.map(escapeLike)) || '%' ESCAPE '\\'))
          AND (\(sourceDomain)::text IS NULL OR EXISTS (SELECT 1 FROM \(table.factSources) s JOIN \(table.rawSources) r ON r.id = s.raw_source_id
                WHERE s.fact_id = f.id AND substring(r.uri from '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+)') ILIKE '%' || \(sourceDomain.map(escapeLike)) || '%' ESCAPE '\\'))
        """
    }

    /// A page of facts, newest first, filtered by content substring, type, a source author
    /// organisation and a source domain.
    public func listFacts(offset: Int = 0, limit: Int = 20, search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> [GraphFact] {
        try await run(
            "SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.facts) f "
                + factFilter(search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain)
                + " ORDER BY f.created_at DESC, f.id OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))"
        )
        .rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// The number of facts matching the filters of ``listFacts(offset:limit:search:factType:authorOrg:sourceDomain:)``.
    public func countFacts(search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.facts) f " + factFilter(search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain))
            .first?.decode(0, as: Int.self) ?? 0
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    public func searchFactsTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.trigram(text, threshold: threshold, limit: limit, in: table.facts)))
    }

    /// Updates a fact's content and type (admin); `nil` keeps a value.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    @discardableResult
    public func updateFact(id: UUID, content: String? = nil, factType: FactType? = nil) async throws -> GraphFact {
        if let content, content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw KTGraphError(code: .invalidArgument, message: "a fact needs content") }
        guard
            let row = try await run(
                """
                UPDATE \(table.facts) SET content = COALESCE(\(content), content), fact_type = COALESCE(\(factType), fact_type)
                WHERE id = \(id) RETURNING id, content, fact_type, created_at
                """
            ).first
        else { throw KTGraphError(code: .notFound, message: "no fact with id \(id)") }
        return try GraphFact(row: row)
    }

    /// Deletes a fact (admin); its links go with it and the counters of its nodes follow.
    public func deleteFact(id: UUID) async throws -> Bool {
        try await runner.withTransaction(logger: logger) { t in
            let nodes = try await t.query("DELETE FROM \(table.nodeFacts) WHERE fact_id = \(id) RETURNING node_id").uuids(0)
            let deleted = try await t.query("DELETE FROM \(table.facts) WHERE id = \(id)").affectedRows > 0
            try await GraphStats.refresh(nodes, in: table, t)
            return deleted
        }
    }

    /// Links a fact to a node with a relevance and a stance (admin; `supports`, `challenges`,
    /// `neutral` or another label).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when the node or the fact is missing.
    public func linkFactToNode(nodeID: UUID, factID: UUID, relevance: Double = 1.0, stance: String? = nil) async throws {
        try await runner.withTransaction(logger: logger) { t in
            let linked = try await t.query(
                """
                INSERT INTO \(table.nodeFacts) (node_id, fact_id, relevance_score, stance)
                SELECT n.id, f.id, \(relevance), \(stance) FROM \(table.nodes) n, \(table.facts) f WHERE n.id = \(nodeID) AND f.id = \(factID)
                ON CONFLICT (node_id, fact_id) DO UPDATE SET relevance_score = EXCLUDED.relevance_score, stance = EXCLUDED.stance
                """
            ).affectedRows
            guard linked > 0 else { throw KTGraphError(code: .notFound, message: "no node \(nodeID) or no fact \(factID)") }
            try await GraphStats.refresh([nodeID], in: table, t)
        }
    }

    /// How a perspective's facts lean: stances `supports`, `challenges`, `neutral`, other.
    public func perspectiveSummary(of nodeID: UUID) async throws -> PerspectiveSummary {
        var summary = PerspectiveSummary()
        for row in try await run("SELECT stance, count(*) FROM \(table.nodeFacts) WHERE node_id = \(nodeID) GROUP BY stance").rows {
            let count = try row.decode(1, as: Int.self)
            switch try row.decode(0, as: String?.self) {
            case "supports": summary.supporting += count
            case "challenges": summary.challenging += count
            case "neutral": summary.neutral += count
            default: summary.unclassified += count
            }
        }
        return summary
    }

    /// Facts rejected for a node.
    public func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> {
        Set(try await run("SELECT fact_id FROM \(table.nodeFactRejections) WHERE node_id = \(nodeID)").uuids(0))
    }

    /// Nodes that share facts with `nodeID`, most shared first.
    public func findNodesSharingFacts(with nodeID: UUID, limit: Int = 10) async throws -> [NodeWithCount] {
        return try await withCounts(
            """
            SELECT o.node_id, count(*) AS shared FROM \(table.nodeFacts) n JOIN \(table.nodeFacts) o ON o.fact_id = n.fact_id AND o.node_id <> n.node_id
            WHERE n.node_id = \(nodeID) GROUP BY o.node_id ORDER BY shared DESC, o.node_id LIMIT \(limit)
            """)
    }

    /// The nodes of a query's (node id, count) rows, in row order (missing nodes left out).
    func withCounts(_ query: PostgresQuery) async throws -> [NodeWithCount] {
        let counts = try await run(query).idCounts()
        return NodeWithCount.pairing(counts, with: try await nodes(ids: counts.map(\.0)))
    }

    // MARK: Edges

    private func edgeFilter(relationshipType: RelationshipType?, nodeID: UUID?) -> PostgresQuery {
        "WHERE (\(relationshipType)::text IS NULL OR e.relationship_type = \(relationshipType)) AND (\(nodeID)::uuid IS NULL OR e.source_node_id = \(nodeID) OR e.target_node_id = \(nodeID))"
    }

    /// A page of edges (heaviest first), filtered by type and by a node at either end.
    public func listEdges(offset: Int = 0, limit: Int = 20, relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> [GraphEdge] {
        try await edges(edgeFilter(relationshipType: relationshipType, nodeID: nodeID) + " ORDER BY e.weight DESC, e.id OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))")
    }

    /// The number of edges matching the filters of ``listEdges(offset:limit:relationshipType:nodeID:)``.
    public func countEdges(relationshipType: RelationshipType? = nil, nodeID: UUID? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.edges) e " + edgeFilter(relationshipType: relationshipType, nodeID: nodeID)).first?.decode(0, as: Int.self) ?? 0
    }

    /// A node's edges with the other node's concept and type, most facts first, a page of them
    /// and the total.
    public func edgesWithTargets(of nodeID: UUID, limit: Int = 50, offset: Int = 0, edgeType: RelationshipType? = nil) async throws -> (edges: [EdgeWithTarget], total: Int) {
        let all = try await edges(edgeFilter(relationshipType: edgeType, nodeID: nodeID))
        let others = Dictionary(
            try await nodes(ids: Array(Set(all.map { $0.sourceID == nodeID ? $0.targetID : $0.sourceID }))).map { ($0.id, $0) },
            uniquingKeysWith: { a, _ in a })
        let sorted = all.sorted { ($0.factIDs.count, $1.id.uuidString) > ($1.factIDs.count, $0.id.uuidString) }
        let page = sorted.dropFirst(max(0, offset)).prefix(max(0, limit)).compactMap { edge -> EdgeWithTarget? in
            let other = edge.sourceID == nodeID ? edge.targetID : edge.sourceID
            return others[other].map { EdgeWithTarget(edge: edge, otherNodeID: other, otherConcept: $0.concept, otherNodeType: $0.nodeType) }
        }
        return (Array(page), all.count)
    }
}
