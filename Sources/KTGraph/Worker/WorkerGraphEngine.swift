import Foundation
public import KTDB
public import KTQdrant
public import Logging

/// The engine of graph-building workers: write-db and Qdrant only.
///
/// It is built from a write-db ``DatabaseSession`` (naming the graph's schema), an optional
/// embedding service and an optional Qdrant client with the graph's own collections. It is a
/// façade over one store per aggregate (`Worker/Stores`: nodes, facts, the fact pool's
/// searches, edges, dimensions, sources, node records, vectors, LLM usage), each built from the
/// engine's ``WorkerContext``; that context holds write-db and Qdrant and nothing else, so a
/// worker cannot reach graph-db by construction (ADR-001).
///
/// Every write is its own short transaction and is committed when the call returns; upserts are
/// keyed on the deterministic key, keep existing non-null values when given `nil`, and set
/// `updated_at` to `clock_timestamp()` so the sync sees them. Qdrant is an index over write-db:
/// a failed Qdrant write is logged and does not undo the committed row (re-running the call
/// converges).
public struct WorkerGraphEngine: WorkerStore {
    var context: WorkerContext

    /// The write-db session (its schema names the graph).
    public let writeSession: DatabaseSession
    /// The embedding service, if any.
    public var embedder: (any EmbeddingService)? { context.embedder }
    /// The Qdrant client, if any.
    public var qdrant: QdrantClient? { context.qdrant }
    /// The graph's collections (`<slug>__facts`, ...).
    public var collections: QdrantCollections { context.collections }
    /// Well-known root keys a parent chain must end in; empty accepts any root (a node without parent).
    public var rootKeys: Set<String> {
        get { context.rootKeys }
        set { context.rootKeys = newValue }
    }

    /// Always `true`: the engine writes write-db.
    public var hasWriteDB: Bool { true }
    /// Always `false`: the engine cannot reach graph-db.
    public var hasGraphDB: Bool { false }

    /// Creates an engine for one graph.
    public init(
        writeSession: DatabaseSession, embedder: (any EmbeddingService)? = nil, qdrant: QdrantClient? = nil,
        collections: QdrantCollections, rootKeys: Set<String> = [], logger: Logger
    ) {
        self.writeSession = writeSession
        context = WorkerContext(
            database: DatabaseSession(pool: writeSession.pool), table: WriteTables(writeSession.schema), embedder: embedder, qdrant: qdrant,
            collections: collections, rootKeys: rootKeys, logger: logger)
    }
}
