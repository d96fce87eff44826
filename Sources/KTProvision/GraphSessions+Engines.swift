public import KTConfig
import KTDB
public import KTGraph
public import Logging

extension GraphSessions {
    /// A worker engine on this graph's write-db and Qdrant (its own collections).
    public func workerEngine(embedder: (any EmbeddingService)?, logger: Logger) -> WorkerGraphEngine {
        WorkerGraphEngine(writeSession: writeSession, embedder: embedder, qdrant: qdrant, collections: collections, logger: logger)
    }

    /// A read engine on this graph's graph-db and Qdrant, one short transaction per call.
    public func readEngine(logger: Logger) -> ReadGraphEngine {
        ReadGraphEngine(session: graphSession, qdrant: qdrant, collections: collections, logger: logger)
    }

    /// The sync engine of this graph.
    public func syncEngine(settings: SyncSettings, logger: Logger) -> SyncEngine {
        SyncEngine(writeSession: writeSession, graphSession: graphSession, graphSlug: graph.slug, settings: settings, logger: logger)
    }

    /// This graph as a ``SyncService`` target.
    public var syncTarget: SyncTarget { SyncTarget(slug: graph.slug, writeSession: writeSession, graphSession: graphSession, database: targets.connectionKey) }
}

extension GraphSessionResolver {
    /// Every active graph (the default one first) as sync targets, for ``SyncService``.
    public func syncTargets() async throws -> [SyncTarget] {
        var targets: [SyncTarget] = []
        for graph in try await listActiveGraphs() {
            targets.append(try await resolve(graphID: graph.id).syncTarget)
        }
        return targets
    }
}

extension Settings {
    /// The deterministic ``LocalEmbedder`` of `embeddingDimensions` (no network).
    public var localEmbedder: LocalEmbedder { LocalEmbedder(dimensions: embeddingDimensions) }

    /// The embedding service these settings describe: an ``OpenAICompatibleEmbedder`` for
    /// `embeddingBaseURL`, `embeddingModel` and `embeddingAPIKey` when a base URL is set, else
    /// ``localEmbedder`` (the example server's default). Either returns vectors of
    /// `embeddingDimensions`, the size of the graphs' Qdrant collections.
    public var embedder: any EmbeddingService {
        guard let embeddingBaseURL else { return localEmbedder }
        return OpenAICompatibleEmbedder(baseURL: embeddingBaseURL, model: embeddingModel, dimensions: embeddingDimensions, apiKey: embeddingAPIKey)
    }
}
