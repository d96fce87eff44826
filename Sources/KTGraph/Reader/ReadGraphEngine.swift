public import KTDB
public import KTQdrant
public import Logging

/// The engine of API, MCP and agent reads: graph-db and Qdrant only.
///
/// Two modes (ADR-001):
/// - ``init(transaction:qdrant:collections:logger:)``: bound to the caller's transaction; the
///   caller owns commit and rollback.
/// - ``init(session:qdrant:collections:logger:)``: on a graph-db ``DatabaseSession`` (its
///   schema names the graph); every call runs in its own short transaction and holds no
///   connection while awaiting anything else (for long agent loops).
///
/// It is a façade over one store per aggregate (`Reader/Stores`: nodes, facts, fact searches,
/// edges, dimensions, sources, node records, administration writes, export, LLM usage), each
/// built from the engine's ``ReaderContext``; that context holds graph-db and Qdrant and
/// nothing else, so a reader cannot reach write-db by construction.
///
/// The admin writes (create, update, delete, versions, ``mergeNodes(keep:absorb:)``) go to
/// graph-db directly, for API administration; they are committed by the call in session mode.
public struct ReadGraphEngine: ReaderStore {
    let context: ReaderContext

    /// The Qdrant client, if any.
    public var qdrant: QdrantClient? { context.qdrant }
    /// The graph's collections.
    public var collections: QdrantCollections { context.collections }

    /// Always `false`: the engine has no write-db.
    public var hasWriteDB: Bool { false }
    /// Always `true`.
    public var hasGraphDB: Bool { true }

    /// An engine on the caller's transaction.
    public init(transaction: PostgresTransaction, qdrant: QdrantClient? = nil, collections: QdrantCollections, logger: Logger) {
        context = ReaderContext(runner: transaction, table: GraphTables(transaction.schema), qdrant: qdrant, collections: collections, logger: logger)
    }

    /// An engine that opens a short transaction per call on `session` (graph-db, naming the
    /// graph's schema).
    public init(session: DatabaseSession, qdrant: QdrantClient? = nil, collections: QdrantCollections, logger: Logger) {
        context = ReaderContext(
            runner: DatabaseSession(pool: session.pool), table: GraphTables(session.schema), qdrant: qdrant, collections: collections, logger: logger)
    }
}
