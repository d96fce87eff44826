public import Foundation
public import KTDB
public import KTQdrant
public import Logging

/// The engine of API, MCP and agent reads: graph-db and Qdrant only.
///
/// Two modes (ADR-001):
/// - ``init(transaction:qdrant:collections:logger:)``: bound to the caller's transaction; the
///   caller owns commit and rollback.
/// - ``init(session:qdrant:collections:logger:)``: bound to a schema-bound ``DatabaseSession``;
///   every call runs in its own short transaction and holds no connection while awaiting
///   anything else (for long agent loops).
///
/// The admin writes (create, update, delete, versions, ``mergeNodes(keep:absorb:)``) go to
/// graph-db directly, for API administration; they are committed by the call in session mode.
public struct ReadGraphEngine: Sendable {
    /// Runs the engine's statements and transactions. Its SQL names the graph's tables with
    /// their schema (``GraphTables``), so in session mode nothing sets `search_path` and a
    /// single statement goes alone in autocommit mode.
    let runner: any PostgresQueryRunner
    /// The graph's tables, qualified with its schema.
    let table: GraphTables
    /// The Qdrant client, if any.
    public let qdrant: QdrantClient?
    /// The graph's collections.
    public let collections: QdrantCollections
    let logger: Logger

    /// Always `false`: the engine has no write-db.
    public var hasWriteDB: Bool { false }
    /// Always `true`.
    public var hasGraphDB: Bool { true }

    /// An engine on the caller's transaction.
    public init(transaction: PostgresTransaction, qdrant: QdrantClient? = nil, collections: QdrantCollections, logger: Logger) {
        runner = transaction
        table = GraphTables(transaction.schema)
        self.qdrant = qdrant
        self.collections = collections
        self.logger = logger
    }

    /// An engine that opens a short transaction per call on `session` (graph-db, schema-bound).
    public init(session: DatabaseSession, qdrant: QdrantClient? = nil, collections: QdrantCollections, logger: Logger) {
        runner = DatabaseSession(pool: session.pool)
        table = GraphTables(session.schema)
        self.qdrant = qdrant
        self.collections = collections
        self.logger = logger
    }

    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresResult {
        try await runner.run(query, logger: logger)
    }

    // MARK: Nodes

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
    public func node(id: UUID) async throws -> GraphNode? { try await nodes("WHERE id = \(id)").first }

    /// The nodes with these ids (missing ones left out).
    public func nodes(ids: [UUID]) async throws -> [GraphNode] {
        guard !ids.isEmpty else { return [] }
        return try await nodes("WHERE id = ANY(\(ids.map(\.uuidString))::uuid[]) ORDER BY concept")
    }

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

    func nodeFilter(search: String?, nodeType: NodeType?) -> PostgresQuery {
        "WHERE (\(search)::text IS NULL OR concept ILIKE '%' || \(search.map(escapeLike)) || '%' ESCAPE '\\') AND (\(nodeType)::text IS NULL OR node_type = \(nodeType))"
    }

    /// A page of nodes, filtered by a concept substring and a type.
    public func listNodes(offset: Int = 0, limit: Int = 20, search: String? = nil, nodeType: NodeType? = nil, sort: NodeSort = .updatedAt) async throws -> [GraphNode] {
        let order = sort == .concept ? "concept ASC, id" : "\(sort.rawValue) DESC, id"
        return try await nodes(nodeFilter(search: search, nodeType: nodeType) + " ORDER BY \(unsafeRaw: order) OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))")
    }

    /// The number of nodes matching the filters of ``listNodes(offset:limit:search:nodeType:sort:)``.
    public func countNodes(search: String? = nil, nodeType: NodeType? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \(table.nodes) " + nodeFilter(search: search, nodeType: nodeType)).first?.decode(0, as: Int.self) ?? 0
    }

    /// Children of a node, alphabetical.
    public func children(of parentID: UUID) async throws -> [GraphNode] { try await nodes("WHERE parent_id = \(parentID) ORDER BY concept") }

    /// Perspectives of a concept.
    public func perspectives(of conceptID: UUID) async throws -> [GraphNode] {
        try await nodes("WHERE source_concept_id = \(conceptID) AND node_type = 'perspective' ORDER BY concept")
    }

    /// Nodes whose `updated_at` is older than `maxAgeDays`, oldest first.
    public func staleNodes(maxAgeDays: Int = 30, limit: Int = 20) async throws -> [GraphNode] {
        try await nodes("WHERE updated_at < now() - make_interval(days => \(maxAgeDays)) ORDER BY updated_at LIMIT \(limit)")
    }

    /// Case-insensitive concept search.
    public func searchNodes(_ text: String, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(nodeFilter(search: text, nodeType: nodeType) + " ORDER BY length(concept), concept LIMIT \(limit)")
    }

    /// Trigram-similar concepts, best first (pg_trgm).
    public func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(
            """
            WHERE public.similarity(concept, \(text)) >= \(threshold) AND (\(nodeType)::text IS NULL OR node_type = \(nodeType))
            ORDER BY public.similarity(concept, \(text)) DESC, concept LIMIT \(limit)
            """)
    }

    /// Nodes near `embedding` in Qdrant, in Qdrant's order.
    public func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        guard let qdrant else { return [] }
        let filter = nodeType.map { QdrantFilter(must: [.match("node_type", .string($0.rawValue))]) }
        let hits = try await qdrant.query(collections.nodes, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: 1 - threshold, filter: filter))
        let found = Dictionary(try await nodes(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { $0.uuid.flatMap { found[$0] } }
    }

    // MARK: Sources and reports

    /// The raw source with `id`, or `nil`.
    public func rawSource(id: UUID) async throws -> GraphRawSource? {
        try await run("SELECT \(unsafeRaw: GraphRawSource.columns) FROM \(table.rawSources) WHERE id = \(id)")
            .first.map { row throws(KTDBError) in try GraphRawSource(row: row) }
    }

    private var factSourceSelect: PostgresQuery {
        """
        SELECT s.id, s.fact_id, s.raw_source_id, r.uri, r.title, s.context_snippet, s.attribution, s.author_person, s.author_org
        FROM \(table.factSources) s JOIN \(table.rawSources) r ON r.id = s.raw_source_id
        """
    }

    /// A fact's sources, by URI.
    public func factSources(of factID: UUID) async throws -> [GraphFactSource] {
        try await run(factSourceSelect + " WHERE s.fact_id = \(factID) ORDER BY r.uri, s.id").rows.map { row throws(KTDBError) in try GraphFactSource(row: row) }
    }

    /// A node's facts, each with its sources (two statements, whatever the number of facts).
    public func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources] {
        try await withSources(try await nodeFacts(of: nodeID))
    }

    /// `facts`, each with its sources, in one statement.
    func withSources(_ facts: [GraphFact]) async throws -> [FactWithSources] {
        guard !facts.isEmpty else { return [] }
        let sources = Dictionary(
            grouping: try await run(factSourceSelect + " WHERE s.fact_id = ANY(\(facts.map(\.id.uuidString))::uuid[]) ORDER BY r.uri, s.id")
                .rows.map { row throws(KTDBError) in try GraphFactSource(row: row) }, by: \.factID)
        return facts.map { FactWithSources(fact: $0, sources: sources[$0.id] ?? []) }
    }

    /// A node's convergence report, or `nil`.
    public func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? {
        try await run(
            """
            SELECT convergence_score, converged_claims, recommended_content, computed_at FROM \(table.convergenceReports) WHERE node_id = \(nodeID)
            """
        ).first.map { row throws(KTDBError) in try GraphConvergenceReport(row: row, nodeID: nodeID) }
    }

    // MARK: History

    /// A saved version of a node (the type both engines return).
    public typealias NodeVersion = GraphNodeVersion

    /// Saves a version: number max+1, snapshot of concept, definition and counts.
    @discardableResult
    public func saveVersion(nodeID: UUID) async throws -> NodeVersion {
        try await runner.withTransaction(logger: logger) { transaction in
            guard try await transaction.query("SELECT 1 FROM \(table.nodes) WHERE id = \(nodeID) FOR UPDATE").first != nil else {
                throw KTGraphError(code: .notFound, message: "no node with id \(nodeID)")
            }
            let row = try await transaction.query(
                """
                INSERT INTO \(table.nodeVersions) (id, node_id, version_number, snapshot)
                SELECT \(UUID()), n.id, coalesce((SELECT max(version_number) FROM \(table.nodeVersions) WHERE node_id = n.id), 0) + 1,
                       jsonb_build_object('concept', n.concept, 'definition', n.definition, 'attractor', n.attractor, 'filter_id', n.filter_id,
                                          'max_content_tokens', n.max_content_tokens, 'fact_count', n.fact_count,
                                          'edge_count', n.edge_count, 'dimension_count', n.dimension_count)
                FROM \(table.nodes) n WHERE n.id = \(nodeID)
                RETURNING version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at
                """
            ).rows[0]
            return try GraphNodeVersion(row: row, nodeID: nodeID)
        }
    }

    /// A node's versions, oldest first.
    public func history(of nodeID: UUID) async throws -> [NodeVersion] {
        try await run(
            """
            SELECT version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at FROM \(table.nodeVersions)
            WHERE node_id = \(nodeID) ORDER BY version_number
            """
        ).rows.map { row throws(KTDBError) in try GraphNodeVersion(row: row, nodeID: nodeID) }
    }

}

/// Recomputes the denormalised counters of nodes (set-based; absent children count 0).
enum GraphStats {
    /// Recomputes the denormalised counts of `ids` and writes the rows whose counts changed
    /// (an unchanged node gets no new row version). Nodes are found by primary key one by one,
    /// whatever the planner's statistics say about the table.
    static func refresh(_ ids: [UUID], in table: GraphTables, _ t: PostgresTransaction) async throws {
        guard !ids.isEmpty else { return }
        let changed = try await t.query(
            """
            SELECT m.id, x.facts, x.edges, x.children, x.dimensions
            FROM unnest(\(ids.map(\.postgresText))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id, fact_count, edge_count, child_count, dimension_count FROM \(table.nodes) WHERE id = k.id OFFSET 0) m
            CROSS JOIN LATERAL (SELECT (SELECT count(*) FROM \(table.nodeFacts) nf WHERE nf.node_id = m.id) AS facts,
                                       (SELECT count(*) FROM \(table.edges) e WHERE e.source_node_id = m.id OR e.target_node_id = m.id) AS edges,
                                       (SELECT count(*) FROM \(table.nodes) ch WHERE ch.parent_id = m.id) AS children,
                                       (SELECT count(*) FROM \(table.dimensions) d WHERE d.node_id = m.id) AS dimensions) x
            WHERE (m.fact_count, m.edge_count, m.child_count, m.dimension_count) IS DISTINCT FROM (x.facts, x.edges, x.children, x.dimensions)
            """
        ).rows
        guard !changed.isEmpty else { return }
        var columns: [[String]] = Array(repeating: [], count: 5)
        for row in changed {
            for index in 0..<5 { columns[index].append(try row.decode(index, as: String.self)) }
        }
        try await t.query(
            """
            UPDATE \(table.nodes) n SET fact_count = c.facts, edge_count = c.edges, child_count = c.children, dimension_count = c.dimensions
            FROM unnest(\(columns[0])::uuid[], \(columns[1])::int[], \(columns[2])::int[], \(columns[3])::int[], \(columns[4])::int[])
                 AS c(id, facts, edges, children, dimensions)
            WHERE n.id = c.id
            """)
    }
}
