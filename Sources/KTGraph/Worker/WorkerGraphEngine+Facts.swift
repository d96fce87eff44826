public import Foundation

/// A graph's facts in write-db: create, delete, link to nodes, rejections.
extension WorkerGraphEngine {
    /// Creates or updates a fact (id given, or a new UUID) and its Qdrant point (payload
    /// `content`, `fact_type`, `node_ids`).
    @discardableResult
    public func createFact(content: String, factType: FactType = .claim, id: UUID = UUID(), embedding: [Float]? = nil) async throws -> GraphFact {
        try await factStore.createFact(content: content, factType: factType, id: id, embedding: embedding)
    }

    /// Creates many facts in one statement, and their Qdrant points in chunks when an embedder is set.
    @discardableResult
    public func createFacts(_ facts: [(content: String, factType: FactType)]) async throws -> [GraphFact] { try await factStore.createFacts(facts) }

    /// Deletes a fact, removes it from every node, edge and dimension, and deletes its Qdrant point.
    public func deleteFact(id: UUID) async throws { try await factStore.deleteFact(id: id) }

    /// Facts by id (missing ones left out).
    public func facts(ids: [UUID]) async throws -> [GraphFact] { try await factStore.facts(ids: ids) }

    /// The facts linked to a node (from `write_nodes.fact_ids`).
    public func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] { try await factStore.nodeFacts(of: nodeID) }

    /// Links a fact to a node (no duplicate ids) and puts the node in the fact's Qdrant `node_ids`.
    public func linkFactToNode(nodeID: UUID, factID: UUID) async throws { try await factStore.linkFactToNode(nodeID: nodeID, factID: factID) }

    /// Links many (node, fact) pairs in one statement; Qdrant `node_ids` follow.
    public func linkFacts(_ links: [(nodeID: UUID, factID: UUID)]) async throws { try await factStore.linkFacts(links) }

    /// Removes a fact from a node and the node from the fact's Qdrant `node_ids`.
    public func unlinkFactFromNode(nodeID: UUID, factID: UUID) async throws { try await factStore.unlinkFactFromNode(nodeID: nodeID, factID: factID) }

    /// Records that a fact was rejected for a node (idempotent); the node is touched so the sync
    /// drops the link from graph-db.
    public func recordFactRejection(nodeID: UUID, factID: UUID) async throws { try await factStore.recordFactRejection(nodeID: nodeID, factID: factID) }

    /// Facts rejected for a node.
    public func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> { try await factStore.rejectedFactIDs(nodeID: nodeID) }

    /// A node's facts with the sources they were found in.
    public func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] { try await factStore.nodeFactsWithSources(of: nodeID) }
}
