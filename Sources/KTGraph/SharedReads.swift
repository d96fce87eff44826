import Foundation
import KTDB
import KTQdrant

/// The fact reads both engines share, written once over a facts table: the graph's
/// ``WriteTable/facts`` for ``WorkerGraphEngine``, its ``GraphTable/facts`` for
/// ``ReadGraphEngine``. The two tables share these columns.
enum FactQueries {
    static let columns = "id, content, fact_type, created_at"

    /// Facts by id (missing ones left out).
    static func byIDs(_ ids: [UUID], in table: TableName) -> PostgresQuery {
        "SELECT \(unsafeRaw: columns) FROM \(table) WHERE id = ANY(\(ids.map(\.uuidString))::uuid[])"
    }

    /// Facts containing `text` (case-insensitive), of `factType` if given, newest first.
    static func containing(_ text: String, factType: FactType?, limit: Int, in table: TableName) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: columns) FROM \(table) WHERE content ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\'
          AND (\(factType)::text IS NULL OR fact_type = \(factType)) ORDER BY created_at DESC, id LIMIT \(limit)
        """
    }

    /// Facts trigram-similar to `text` (pg_trgm), best first.
    static func trigram(_ text: String, threshold: Double, limit: Int, in table: TableName) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: columns) FROM \(table) WHERE public.similarity(content, \(text)) >= \(threshold)
        ORDER BY public.similarity(content, \(text)) DESC, id LIMIT \(limit)
        """
    }

    static func facts(_ result: PostgresResult) throws(KTDBError) -> [GraphFact] {
        try result.rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }
}

/// The Qdrant side of the "nodes by similar facts" searches, written once for both engines:
/// the ids of the facts near some embeddings in the graph's facts collection.
enum FactVectors {
    /// For each embedding, the nearest `limit` facts with score ≥ `threshold`, leaving out
    /// `excluding`; the union of their ids.
    static func ids(
        near embeddings: [[Float]], qdrant: QdrantClient, collection: String, limit: Int, threshold: Double,
        excluding: Set<UUID> = []
    ) async throws -> [UUID] {
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        var found: [UUID] = [], seen: Set<UUID> = []
        for embedding in embeddings {
            for hit in try await qdrant.query(collection, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter)) {
                if let id = hit.uuid, seen.insert(id).inserted { found.append(id) }
            }
        }
        return found
    }

    /// The nodes linking most of the facts near `embeddings` (``ids(near:qdrant:collection:limit:threshold:excluding:)``,
    /// leaving out the facts `excluding` returns), as the engine's `nodesLinking` counts them;
    /// none without Qdrant.
    static func nodes(
        near embeddings: [[Float]], qdrant: QdrantClient?, collection: String, limit: Int, threshold: Double,
        excluding: () async throws -> Set<UUID> = { [] }, nodesLinking: ([UUID]) async throws -> [NodeWithCount]
    ) async throws -> [NodeWithCount] {
        guard let qdrant, !embeddings.isEmpty else { return [] }
        return try await nodesLinking(try await ids(near: embeddings, qdrant: qdrant, collection: collection, limit: limit, threshold: threshold, excluding: try await excluding()))
    }
}

/// The Qdrant side of the similar-node search, written once for both engines: the nodes near an
/// embedding in the graph's nodes collection, in Qdrant's order.
enum NodeVectors {
    /// Nodes within cosine distance `threshold` of `embedding` (of `nodeType` if given), read
    /// from the engine's database with `nodes`; none without Qdrant.
    static func similar(
        to embedding: [Float], threshold: Double, limit: Int, nodeType: NodeType?, qdrant: QdrantClient?, collection: String,
        nodes: ([UUID]) async throws -> [GraphNode]
    ) async throws -> [GraphNode] {
        guard let qdrant else { return [] }
        let filter = nodeType.map { QdrantFilter(must: [.match("node_type", .string($0.rawValue))]) }
        let hits = try await qdrant.query(collection, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: 1 - threshold, filter: filter))
        let found = Dictionary(try await nodes(hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { $0.uuid.flatMap { found[$0] } }
    }
}
