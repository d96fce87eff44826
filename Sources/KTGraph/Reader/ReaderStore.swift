import KTDB
import KTQdrant
import Logging

/// What a reader's stores share: graph-db, addressed through the catalog, and Qdrant. There is
/// no write-db here, so no reader store can reach it.
struct ReaderContext: Sendable {
    /// Runs statements and transactions: the caller's transaction, or a session on graph-db's
    /// pool. Its SQL names the graph's tables with their schema (``table``), so nothing sets
    /// `search_path` and a single statement goes alone in autocommit mode.
    let runner: any PostgresQueryRunner
    /// The graph's graph-db tables, qualified with its schema.
    let table: GraphTables
    let qdrant: QdrantClient?
    let collections: QdrantCollections
    let logger: Logger
}

/// A reader store: one aggregate's SQL and Qdrant calls over a ``ReaderContext``. The stores
/// reach each other through the accessors below (cheap values built from the same context).
protocol ReaderStore: Sendable {
    var context: ReaderContext { get }
}

extension ReaderStore {
    var runner: any PostgresQueryRunner { context.runner }
    var table: GraphTables { context.table }
    var qdrant: QdrantClient? { context.qdrant }
    var collections: QdrantCollections { context.collections }
    var logger: Logger { context.logger }

    /// Runs one statement on graph-db.
    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresResult {
        try await runner.run(query, logger: logger)
    }

    var nodeStore: ReadNodeStore { ReadNodeStore(context: context) }
    var factStore: ReadFactStore { ReadFactStore(context: context) }
    var factSearch: ReadFactSearch { ReadFactSearch(context: context) }
    var edgeStore: ReadEdgeStore { ReadEdgeStore(context: context) }
    var dimensionStore: ReadDimensionStore { ReadDimensionStore(context: context) }
    var sourceStore: ReadSourceStore { ReadSourceStore(context: context) }
    var nodeRecordStore: ReadNodeRecordStore { ReadNodeRecordStore(context: context) }
    var adminStore: GraphAdminStore { GraphAdminStore(context: context) }
    var exportStore: ReadExportStore { ReadExportStore(context: context) }
    var llmUsageStore: ReadLLMUsageStore { ReadLLMUsageStore(context: context) }
}
