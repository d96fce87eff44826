import Foundation
import KTDB
import KTQdrant
import Logging

/// The administration writes the API makes in graph-db directly: nodes, edges and facts created, changed, merged or deleted.
struct GraphAdminStore: ReaderStore {
    let context: ReaderContext

    /// Creates a node directly in graph-db (admin); the id is `key_to_uuid(slug(concept))`.
    @discardableResult
    func createNode(concept: String, nodeType: NodeType = .concept, definition: String? = nil, parentID: UUID? = nil) async throws -> GraphNode {
        let key = GraphKeys.nodeKey(concept)
        guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
        let row = try await run(
            """
            INSERT INTO \(table.nodes) (id, concept, node_type, definition, parent_id) VALUES (\(GraphKeys.id(forKey: key)), \(concept), \(nodeType), \(definition), \(parentID))
            ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type,
                definition = COALESCE(EXCLUDED.definition, nodes.definition), parent_id = COALESCE(EXCLUDED.parent_id, nodes.parent_id), updated_at = now()
            RETURNING \(unsafeRaw: ReadNodeStore.nodeColumns)
            """
        ).rows[0]
        return try ReadNodeStore.node(row)
    }

    /// Updates a node's concept text and definition (admin); `nil` keeps a value.
    @discardableResult
    func updateNode(id: UUID, concept: String? = nil, definition: String? = nil) async throws -> GraphNode {
        guard
            let row = try await run(
                """
                UPDATE \(table.nodes) SET concept = COALESCE(\(concept), concept), definition = COALESCE(\(definition), definition), updated_at = now()
                WHERE id = \(id) RETURNING \(unsafeRaw: ReadNodeStore.nodeColumns)
                """
            ).first
        else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return try ReadNodeStore.node(row)
    }

    /// Deletes a node (admin); edges, links and dimensions go with it.
    func deleteNode(id: UUID) async throws -> Bool {
        try await run("DELETE FROM \(table.nodes) WHERE id = \(id)").affectedRows > 0
    }

    /// Creates an edge directly in graph-db (admin); undirected types are stored with the smaller id
    /// first.
    @discardableResult
    func createEdge(sourceID: UUID, targetID: UUID, relationshipType: RelationshipType = .related, weight: Double = 0.5) async throws -> GraphEdge {
        let a = GraphKeys.nodeKey(try await requireNode(sourceID).concept), b = GraphKeys.nodeKey(try await requireNode(targetID).concept)
        let id = GraphKeys.id(forKey: GraphKeys.edgeKey(relationshipType, a, b))
        let (source, target) = GraphKeys.orderedNodeIDs(relationshipType, sourceID, targetID)
        let row = try await run(
            """
            INSERT INTO \(table.edges) (id, source_node_id, target_node_id, relationship_type, weight)
            VALUES (\(id), \(source), \(target), \(relationshipType), \(weight))
            ON CONFLICT ON CONSTRAINT uq_edge_source_target_type DO UPDATE SET weight = EXCLUDED.weight, updated_at = now()
            RETURNING id
            """
        ).rows[0]
        guard let edge = try await edgeStore.edge(id: try row.decode(0, as: UUID.self)) else { throw KTGraphError(code: .notFound, message: "edge vanished") }
        return edge
    }

    /// Deletes an edge (admin).
    func deleteEdge(id: UUID) async throws -> Bool {
        try await run("DELETE FROM \(table.edges) WHERE id = \(id)").affectedRows > 0
    }

    func requireNode(_ id: UUID) async throws -> GraphNode {
        guard let node = try await nodeStore.node(id: id) else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return node
    }

    /// Merges `absorb` into `keep` under transaction-level advisory locks on both ids (taken in sorted
    /// order, so concurrent merges cannot deadlock): facts, edges (weights averaged when `keep` already
    /// has the edge, self-loops dropped, edge facts copied), dimensions and children move to `keep`;
    /// `absorb` is deleted.
    @discardableResult
    func mergeNodes(keep: UUID, absorb: UUID) async throws -> GraphNode {
        guard keep != absorb else { throw KTGraphError(code: .invalidArgument, message: "cannot merge a node into itself") }
        return try await runner.withTransaction(logger: logger) { t in
            for id in [keep, absorb].sorted(by: { $0.uuidString < $1.uuidString }) {
                try await t.query("SELECT pg_advisory_xact_lock(hashtextextended(\(id.uuidString), 0))")
            }
            guard try await t.query("SELECT count(*) FROM \(table.nodes) WHERE id = ANY(\([keep.uuidString, absorb.uuidString])::uuid[])").first?.decode(0, as: Int.self) == 2 else {
                throw KTGraphError(code: .notFound, message: "both nodes must exist")
            }
            try await t.query(
                """
                INSERT INTO \(table.nodeFacts) (node_id, fact_id, relevance_score, stance) SELECT \(keep), fact_id, relevance_score, stance FROM \(table.nodeFacts) WHERE node_id = \(absorb)
                ON CONFLICT DO NOTHING
                """)
            // Edges of `absorb`, re-pointed at `keep`; drop self-loops; average with existing edges.
            let moved = try await t.query(
                """
                SELECT id, CASE WHEN source_node_id = \(absorb) THEN \(keep) ELSE source_node_id END AS s,
                       CASE WHEN target_node_id = \(absorb) THEN \(keep) ELSE target_node_id END AS t, relationship_type, weight
                FROM \(table.edges) WHERE source_node_id = \(absorb) OR target_node_id = \(absorb)
                """
            ).rows
            for row in moved {
                let oldID = try row.decode("id", as: UUID.self)
                let s = try row.decode("s", as: UUID.self), target = try row.decode("t", as: UUID.self)
                let type = try row.decode("relationship_type", as: RelationshipType.self), weight = try row.decode("weight", as: Double.self)
                guard s != target else { continue }
                let (a, b) = GraphKeys.orderedNodeIDs(type, s, target)
                let existing = try await t.query(
                    """
                    SELECT id FROM \(table.edges) WHERE source_node_id = \(a) AND target_node_id = \(b) AND relationship_type = \(type)
                    """
                ).first?.decode(0, as: UUID.self)
                let keptID: UUID
                if let existing {
                    try await t.query("UPDATE \(table.edges) SET weight = (weight + \(weight)) / 2, updated_at = now() WHERE id = \(existing)")
                    keptID = existing
                } else {
                    keptID = UUID()
                    try await t.query(
                        """
                        INSERT INTO \(table.edges) (id, source_node_id, target_node_id, relationship_type, weight, justification)
                        SELECT \(keptID), \(a), \(b), relationship_type, weight, justification FROM \(table.edges) WHERE id = \(oldID)
                        """)
                }
                try await t.query(
                    """
                    INSERT INTO \(table.edgeFacts) (edge_id, fact_id, relevance_score) SELECT \(keptID), fact_id, relevance_score FROM \(table.edgeFacts) WHERE edge_id = \(oldID)
                    ON CONFLICT DO NOTHING
                    """)
            }
            try await t.query("UPDATE \(table.dimensions) SET node_id = \(keep) WHERE node_id = \(absorb)")
            try await t.query("UPDATE \(table.nodes) SET parent_id = \(keep) WHERE parent_id = \(absorb)")
            try await t.query("DELETE FROM \(table.nodes) WHERE id = \(absorb)")
            try await GraphStats.refresh([keep], in: table, t)
            let row = try await t.query("SELECT \(unsafeRaw: ReadNodeStore.nodeColumns) FROM \(table.nodes) WHERE id = \(keep)").rows[0]
            return try ReadNodeStore.node(row)
        }
    }

    /// Updates a fact's content and type (admin); `nil` keeps a value.
    @discardableResult
    func updateFact(id: UUID, content: String? = nil, factType: FactType? = nil) async throws -> GraphFact {
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
    func deleteFact(id: UUID) async throws -> Bool {
        try await runner.withTransaction(logger: logger) { t in
            let nodes = try await t.query("DELETE FROM \(table.nodeFacts) WHERE fact_id = \(id) RETURNING node_id").uuids(0)
            let deleted = try await t.query("DELETE FROM \(table.facts) WHERE id = \(id)").affectedRows > 0
            try await GraphStats.refresh(nodes, in: table, t)
            return deleted
        }
    }

    /// Links a fact to a node with a relevance and a stance (admin; `supports`, `challenges`, `neutral`
    /// or another label).
    func linkFactToNode(nodeID: UUID, factID: UUID, relevance: Double = 1.0, stance: String? = nil) async throws {
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
}
