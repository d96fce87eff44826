public import Foundation

/// Where a graph's facts come from, in graph-db: raw sources and fact sources.
extension ReadGraphEngine {
    /// The raw source with `id`, or `nil`.
    public func rawSource(id: UUID) async throws -> GraphRawSource? { try await sourceStore.rawSource(id: id) }

    /// A fact's sources, by URI.
    public func factSources(of factID: UUID) async throws -> [GraphFactSource] { try await sourceStore.factSources(of: factID) }

    /// A node's facts, each with its sources (two statements, whatever the number of facts).
    public func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] { try await sourceStore.nodeFactsWithSources(of: nodeID) }
}
