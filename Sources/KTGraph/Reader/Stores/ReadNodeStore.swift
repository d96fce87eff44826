import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's nodes in graph-db: lookups, lists, children and perspectives, the node searches.
struct ReadNodeStore: ReaderStore {
    let context: ReaderContext

    static let nodeColumns = """
        id, concept, node_type, entity_subtype, parent_id, source_concept_id, definition, definition_source, stale_after,
        access_count, update_count, fact_count, edge_count, child_count, dimension_count, created_at, updated_at
        """

    static func node(_ row: PostgresRow) throws(KTDBError) -> GraphNode {
        let concept = try row.decode("concept", as: String.self)
        return GraphNode(
            id: try row.decode("id", as: UUID.self), concept: concept,
            nodeType: try row.decode("node_type", as: NodeType.self), entitySubtype: try row.decode("entity_subtype", as: String?.self),
            parentID: try row.decode("parent_id", as: UUID?.self), sourceConceptID: try row.decode("source_concept_id", as: UUID?.self),
            definition: try row.decode("definition", as: String?.self), definitionSource: try row.decode("definition_source", as: String?.self),
            staleAfter: try row.decode("stale_after", as: Int.self), accessCount: try row.decode("access_count", as: Int.self),
            updateCount: try row.decode("update_count", as: Int.self), factCount: try row.decode("fact_count", as: Int.self),
            edgeCount: try row.decode("edge_count", as: Int.self), childCount: try row.decode("child_count", as: Int.self),
            dimensionCount: try row.decode("dimension_count", as: Int.self),
            createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    func nodes(_ tail: PostgresQuery) async throws -> [GraphNode] {
        try await run("SELECT \(unsafeRaw: Self.nodeColumns) FROM \(table.nodes) " + tail).rows.map { row throws(KTDBError) in try Self.node(row) }
    }

    /// The node with `id`, or `nil`.
    func node(id: UUID) async throws -> GraphNode? { try await nodes("WHERE id = \(id)").first }

    /// The nodes with these ids (missing ones left out).
    func nodes(ids: [UUID]) async throws -> [GraphNode] {
        guard !ids.isEmpty else { return [] }
        return try await nodes("WHERE id = ANY(\(ids.map(\.uuidString))::uuid[]) ORDER BY concept")
    }

    func nodeFilter(search: String?, nodeType: NodeType?) -> PostgresQuery {
        "WHERE (\(search)::text IS NULL OR concept ILIKE '%' || \(search.map(escapeLike)) || '%' ESCAPE '\\') AND (\(nodeType)::text IS NULL OR node_type = \(nodeType))"
    }

    /// A page of nodes, filtered by a concept substring and a type.
    func listNodes(offset: Int = 0, limit: Int = 20, search: String? = nil, nodeType: NodeType? = nil, sort: ReadGraphEngine.NodeSort = .updatedAt) async throws -> [GraphNode] {
        let order = sort == .concept ? "concept ASC, id" : "\(sort.rawValue) DESC, id"
        return try await nodes(nodeFilter(search: search, nodeType: nodeType) + " ORDER BY \(unsafeRaw: order) OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))")
    }

    /// The number of nodes matching the filters of ``listNodes(offset:limit:search:nodeType:sort:)``.
    func countNodes(search: String? = nil, nodeType: NodeType? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.nodes) " + nodeFilter(search: search, nodeType: nodeType)).first?.decode(0, as: Int.self) ?? 0
    }

    /// Children of a node, alphabetical.
    func children(of parentID: UUID) async throws -> [GraphNode] { try await nodes("WHERE parent_id = \(parentID) ORDER BY concept") }

    /// Perspectives of a concept.
    func perspectives(of conceptID: UUID) async throws -> [GraphNode] {
        try await nodes("WHERE source_concept_id = \(conceptID) AND node_type = 'perspective' ORDER BY concept")
    }

    /// Nodes whose `updated_at` is older than `maxAgeDays`, oldest first.
    func staleNodes(maxAgeDays: Int = 30, limit: Int = 20) async throws -> [GraphNode] {
        try await nodes("WHERE updated_at < now() - make_interval(days => \(maxAgeDays)) ORDER BY updated_at LIMIT \(limit)")
    }

    /// Case-insensitive concept search.
    func searchNodes(_ text: String, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(nodeFilter(search: text, nodeType: nodeType) + " ORDER BY length(concept), concept LIMIT \(limit)")
    }

    /// Trigram-similar concepts, best first (pg_trgm).
    func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(
            """
            WHERE public.similarity(concept, \(text)) >= \(threshold) AND (\(nodeType)::text IS NULL OR node_type = \(nodeType))
            ORDER BY public.similarity(concept, \(text)) DESC, concept LIMIT \(limit)
            """)
    }

    /// Nodes near `embedding` in Qdrant, in Qdrant's order.
    func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await NodeVectors.similar(
            to: embedding, threshold: threshold, limit: limit, nodeType: nodeType, qdrant: qdrant, collection: collections.nodes, nodes: nodes(ids:))
    }

    /// At most `limit` children of a node, by concept.
    func children(of parentID: UUID, limit: Int) async throws -> [GraphNode] {
        try await nodes("WHERE parent_id = \(parentID) ORDER BY concept LIMIT \(limit)")
    }

    /// How many children a node has.
    func countChildren(of parentID: UUID) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.nodes) WHERE parent_id = \(parentID)").first?.decode(0, as: Int.self) ?? 0
    }

    /// How a perspective's facts lean: stances `supports`, `challenges`, `neutral`, other.
    func perspectiveSummary(of nodeID: UUID) async throws -> PerspectiveSummary {
        var summary = PerspectiveSummary()
        for row in try await run("SELECT stance, count(*) FROM \(table.nodeFacts) WHERE node_id = \(nodeID) GROUP BY stance").rows {
            let count = try row.decode(1, as: Int.self)
            switch try row.decode(0, as: String?.self) {
            case "supports": summary.supporting += count
            case "challenges": summary.challenging += count
            case "neutral": summary.neutral += count
            default: summary.unclassified += count
            }
        }
        return summary
    }
}

extension ReadGraphEngine {
    /// How ``listNodes(offset:limit:search:nodeType:sort:)`` orders.
    public enum NodeSort: String, Sendable, CaseIterable {
        /// Most recently updated first.
        case updatedAt = "updated_at"
        /// Most edges first.
        case edgeCount = "edge_count"
        /// Most facts first.
        case factCount = "fact_count"
        /// Alphabetical.
        case concept
    }
}
