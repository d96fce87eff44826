import Foundation
import KTDB
import KTQdrant
import Logging

/// What a worker's stores share: write-db, addressed through the catalog, and Qdrant. There is
/// no graph-db here, so no worker store can reach it.
struct WorkerContext: Sendable {
    /// Runs statements and transactions on write-db. Its SQL names the graph's tables with their
    /// schema (``table``), so the session sets no `search_path`.
    let database: DatabaseSession
    /// The graph's write-db tables, qualified with its schema.
    let table: WriteTables
    let embedder: (any EmbeddingService)?
    let qdrant: QdrantClient?
    let collections: QdrantCollections
    var rootKeys: Set<String>
    let logger: Logger
}

/// A worker store: one aggregate's SQL and Qdrant calls over a ``WorkerContext``. The stores
/// reach each other through the accessors below (cheap values built from the same context).
protocol WorkerStore: Sendable {
    var context: WorkerContext { get }
}

extension WorkerStore {
    var database: DatabaseSession { context.database }
    var table: WriteTables { context.table }
    var embedder: (any EmbeddingService)? { context.embedder }
    var qdrant: QdrantClient? { context.qdrant }
    var collections: QdrantCollections { context.collections }
    var rootKeys: Set<String> { context.rootKeys }
    var logger: Logger { context.logger }

    /// Runs one statement on write-db (autocommit: one round trip).
    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresResult {
        try await database.query(query, logger: logger)
    }

    var nodeStore: WriteNodeStore { WriteNodeStore(context: context) }
    var factStore: WriteFactStore { WriteFactStore(context: context) }
    var factSearch: WriteFactSearch { WriteFactSearch(context: context) }
    var edgeStore: WriteEdgeStore { WriteEdgeStore(context: context) }
    var dimensionStore: WriteDimensionStore { WriteDimensionStore(context: context) }
    var sourceStore: WriteSourceStore { WriteSourceStore(context: context) }
    var nodeRecordStore: WriteNodeRecordStore { WriteNodeRecordStore(context: context) }
    var vectorStore: WriteVectorStore { WriteVectorStore(context: context) }
    var llmUsageStore: WriteLLMUsageStore { WriteLLMUsageStore(context: context) }
}
