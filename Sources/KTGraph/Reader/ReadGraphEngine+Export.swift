public import Foundation

/// A graph's export pages, in key order.
extension ReadGraphEngine {
    /// Nodes by id, `limit` at a time: pass the last id of a page as `after` for the next
    /// (`list_all_nodes`, without holding the whole graph in memory).
    public func exportNodes(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphNode] { try await exportStore.exportNodes(after: after, limit: limit) }

    /// Edges by id, a page at a time (see ``exportNodes(after:limit:)``).
    public func exportEdges(after: UUID? = nil, limit: Int = 1000) async throws -> [GraphEdge] { try await exportStore.exportEdges(after: after, limit: limit) }

    /// Facts by id with their sources, a page at a time (see ``exportNodes(after:limit:)``).
    public func exportFactsWithSources(after: UUID? = nil, limit: Int = 1000) async throws -> [FactWithSources] { try await exportStore.exportFactsWithSources(after: after, limit: limit) }
}
