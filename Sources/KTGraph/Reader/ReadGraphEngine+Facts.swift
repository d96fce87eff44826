public import Foundation

/// A graph's facts in graph-db: by id, by node, lists and rejections.
extension ReadGraphEngine {
    /// A page of a node's facts (oldest first): at most `limit` from `offset`.
    public func nodeFacts(of nodeID: UUID, offset: Int, limit: Int?) async throws -> [GraphFact] { try await factStore.nodeFacts(of: nodeID, offset: offset, limit: limit) }

    /// Facts linked to a node.
    public func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] { try await factStore.nodeFacts(of: nodeID) }

    /// Facts by id (missing ones left out).
    public func facts(ids: [UUID]) async throws -> [GraphFact] { try await factStore.facts(ids: ids) }

    /// Nodes a fact is linked to.
    public func factNodes(of factID: UUID) async throws -> [GraphNode] { try await factStore.factNodes(of: factID) }

    /// A page of facts, newest first, filtered by content substring, type, a source author
    /// organisation and a source domain.
    public func listFacts(offset: Int = 0, limit: Int = 20, search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> [GraphFact] {
        try await factStore.listFacts(offset: offset, limit: limit, search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain)
    }

    /// The number of facts matching the filters of ``listFacts(offset:limit:search:factType:authorOrg:sourceDomain:)``.
    public func countFacts(search: String? = nil, factType: FactType? = nil, authorOrg: String? = nil, sourceDomain: String? = nil) async throws -> Int {
        try await factStore.countFacts(search: search, factType: factType, authorOrg: authorOrg, sourceDomain: sourceDomain)
    }

    /// Facts rejected for a node.
    public func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> { try await factStore.rejectedFactIDs(nodeID: nodeID) }
}
