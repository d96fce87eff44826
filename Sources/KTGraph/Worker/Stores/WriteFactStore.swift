import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's facts in write-db: create, delete, link to nodes, rejections.
struct WriteFactStore: WorkerStore {
    let context: WorkerContext

    /// Creates or updates a fact (id given, or a new UUID) and its Qdrant point (payload `content`,
    /// `fact_type`, `node_ids`).
    @discardableResult
    func createFact(content: String, factType: FactType = .claim, id: UUID = UUID(), embedding: [Float]? = nil) async throws -> GraphFact {
        guard !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw KTGraphError(code: .invalidArgument, message: "a fact needs content")
        }
        let row = try await run(
            """
            INSERT INTO \(table.facts) AS f (id, content, fact_type, created_at, updated_at) VALUES (\(id), \(content), \(factType), clock_timestamp(), clock_timestamp())
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type, updated_at = clock_timestamp()
            RETURNING id, content, fact_type, created_at
            """
        ).rows[0]
        let fact = try GraphFact(row: row)
        await vectorStore.upsertFactPoints([fact], embeddings: embedding.map { [$0] })
        return fact
    }

    /// Creates many facts in one statement, and their Qdrant points in chunks when an embedder is set.
    @discardableResult
    func createFacts(_ facts: [(content: String, factType: FactType)]) async throws -> [GraphFact] {
        guard !facts.isEmpty else { return [] }
        let ids = facts.map { _ in UUID().uuidString }
        let rows = try await run(
            """
            INSERT INTO \(table.facts) (id, content, fact_type, created_at, updated_at)
            SELECT i::uuid, c, t, clock_timestamp(), clock_timestamp() FROM unnest(\(ids)::text[], \(facts.map(\.content))::text[], \(facts.map(\.factType.rawValue))::text[]) AS x(i, c, t)
            RETURNING id, content, fact_type, created_at
            """
        ).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
        await vectorStore.upsertFactPoints(rows, embeddings: nil)
        return rows
    }

    /// Deletes a fact, removes it from every node, edge and dimension, and deletes its Qdrant point.
    func deleteFact(id: UUID) async throws {
        try await database.withTransaction(logger: logger) { transaction in
            let text = id.uuidString.lowercased()
            try await transaction.query("DELETE FROM \(table.facts) WHERE id = \(id)")
            for owners in [table.nodes, table.edges, table.dimensions] {
                try await transaction.query(
                    """
                    UPDATE \(owners) SET fact_ids = array_remove(fact_ids, \(text)), updated_at = clock_timestamp() WHERE fact_ids @> ARRAY[\(text)]::text[]
                    """)
            }
        }
        await vectorStore.qdrantCall("delete fact point") { try await $0.delete(collections.facts, ids: [id]) }
    }

    /// Facts by id (missing ones left out).
    func facts(ids: [UUID]) async throws -> [GraphFact] {
        guard !ids.isEmpty else { return [] }
        return try FactQueries.facts(try await run(FactQueries.byIDs(ids, in: table.facts)))
    }

    /// The facts linked to a node (from `write_nodes.fact_ids`).
    func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] {
        try await run(
            """
            SELECT f.id, f.content, f.fact_type, f.created_at FROM \(table.nodes) n JOIN \(table.facts) f ON f.id::text = ANY(n.fact_ids)
            WHERE n.node_uuid = \(nodeID) ORDER BY f.created_at, f.id
            """
        ).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// Links a fact to a node (no duplicate ids) and puts the node in the fact's Qdrant `node_ids`.
    func linkFactToNode(nodeID: UUID, factID: UUID) async throws {
        try await linkFacts([(nodeID, factID)])
    }

    /// Links many (node, fact) pairs in one statement; Qdrant `node_ids` follow.
    func linkFacts(_ links: [(nodeID: UUID, factID: UUID)]) async throws {
        guard !links.isEmpty else { return }
        // One statement: append what is missing, keeping each id once.
        try await run(
            """
            UPDATE \(table.nodes) n SET fact_ids = ARRAY(SELECT DISTINCT unnest(n.fact_ids || x.added)), updated_at = clock_timestamp()
            FROM (SELECT node::uuid AS node, array_agg(DISTINCT lower(fact)) AS added
                  FROM unnest(\(links.map { $0.nodeID.uuidString })::text[], \(links.map { $0.factID.uuidString })::text[]) AS l(node, fact) GROUP BY node) x
            WHERE n.node_uuid = x.node AND NOT n.fact_ids @> x.added
            """)
        await vectorStore.syncNodeIDsPayload(factIDs: Set(links.map(\.factID)))
    }

    /// Removes a fact from a node and the node from the fact's Qdrant `node_ids`.
    func unlinkFactFromNode(nodeID: UUID, factID: UUID) async throws {
        try await run(
            """
            UPDATE \(table.nodes) SET fact_ids = array_remove(fact_ids, \(factID.uuidString.lowercased())), updated_at = clock_timestamp()
            WHERE node_uuid = \(nodeID) AND fact_ids @> ARRAY[\(factID.uuidString.lowercased())]::text[]
            """)
        await vectorStore.syncNodeIDsPayload(factIDs: [factID])
    }

    /// Records that a fact was rejected for a node (idempotent); the node is touched so the sync drops
    /// the link from graph-db.
    func recordFactRejection(nodeID: UUID, factID: UUID) async throws {
        try await database.withTransaction(logger: logger) { t in
            try await t.query(
                """
                INSERT INTO \(table.nodeFactRejections) (id, node_id, fact_id) VALUES (\(UUID()), \(nodeID), \(factID)) ON CONFLICT DO NOTHING
                """)
            try await t.query("UPDATE \(table.nodes) SET updated_at = clock_timestamp() WHERE node_uuid = \(nodeID)")
        }
    }

    /// Facts rejected for a node.
    func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> {
        Set(try await run("SELECT fact_id FROM \(table.nodeFactRejections) WHERE node_id = \(nodeID)").uuids(0))
    }

    /// A node's facts with the sources they were found in.
    func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] {
        let facts = try await nodeFacts(of: nodeID)
        let sources = Dictionary(grouping: try await sourceStore.factSources(of: facts.map(\.id)), by: \.factID)
        return facts.map { FactWithSources(fact: $0, sources: sources[$0.id] ?? []) }
    }
}
