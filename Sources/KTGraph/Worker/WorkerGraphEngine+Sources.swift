public import Foundation

/// Where a graph's facts come from, in write-db: raw sources, fact sources, prohibited chunks.
extension WorkerGraphEngine {
    /// Stores a raw source (id `uri_to_source_id(uri)`), keeping stored values where `source`
    /// has none; returns the stored row.
    ///
    /// - Throws: ``KTGraphError/Code/invalidArgument`` for an empty URI, or when another source
    ///   already has `contentHash` (the hash is unique in write-db).
    @discardableResult
    public func upsertRawSource(_ source: GraphRawSource) async throws -> GraphRawSource { try await sourceStore.upsertRawSource(source) }

    /// The raw source with `id`, or `nil`.
    public func rawSource(id: UUID) async throws -> GraphRawSource? { try await sourceStore.rawSource(id: id) }

    /// The raw source with this content hash, or `nil`.
    public func rawSource(contentHash: String) async throws -> GraphRawSource? { try await sourceStore.rawSource(contentHash: contentHash) }

    /// Deletes a raw source; in graph-db its fact sources and chunks go with it (the write-db
    /// rows stay and return with the source if it is stored again).
    public func deleteRawSource(id: UUID) async throws { try await sourceStore.deleteRawSource(id: id) }

    /// Records that a fact was found in `source` (stored with ``upsertRawSource(_:)``). The row's
    /// id follows from the fact and the source, so recording it again updates it.
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when the fact is not in write-db.
    @discardableResult
    public func addFactSource(factID: UUID, source: GraphRawSource, contextSnippet: String? = nil, attribution: String? = nil, authorPerson: String? = nil, authorOrg: String? = nil) async throws
        -> GraphFactSource
    { try await sourceStore.addFactSource(factID: factID, source: source, contextSnippet: contextSnippet, attribution: attribution, authorPerson: authorPerson, authorOrg: authorOrg) }

    /// A fact's sources, by URI. The raw source id is the one the sync links it to (the source
    /// with the cited content hash, else `uri_to_source_id(uri)`).
    public func factSources(of factID: UUID) async throws -> [GraphFactSource] { try await sourceStore.factSources(of: factID) }

    /// Deletes a fact source.
    public func deleteFactSource(id: UUID) async throws { try await sourceStore.deleteFactSource(id: id) }

    /// Records a chunk of a source that a model refused to process; returns its id. The sync
    /// links it to the raw source with `sourceContentHash` (and waits for that source).
    @discardableResult
    public func recordProhibitedChunk(sourceContentHash: String, chunkText: String, modelID: String? = nil, fallbackModelID: String? = nil, errorMessage: String? = nil) async throws -> UUID {
        try await sourceStore.recordProhibitedChunk(sourceContentHash: sourceContentHash, chunkText: chunkText, modelID: modelID, fallbackModelID: fallbackModelID, errorMessage: errorMessage)
    }
}
