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
    /// Runs the engine's transactions (admin writes, versions, merges).
    let runner: any PostgresQueryRunner
    /// Runs the engine's single statements: schema-qualified, so in session mode they need no
    /// `search_path` setting and go as one statement in autocommit mode.
    let statements: any PostgresQueryRunner
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
        statements = transaction
        table = GraphTables(transaction.schema)
        self.qdrant = qdrant
        self.collections = collections
        self.logger = logger
    }

    /// An engine that opens a short transaction per call on `session` (graph-db, schema-bound).
    public init(session: DatabaseSession, qdrant: QdrantClient? = nil, collections: QdrantCollections, logger: Logger) {
        runner = session
        statements = DatabaseSession(pool: session.pool)
        table = GraphTables(session.schema)
        self.qdrant = qdrant
        self.collections = collections
        self.logger = logger
    }

    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresResult {
        try await statements.run(query, logger: logger)
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
            nodeType: try row.decode("node_type", as: String.self), entitySubtype: try row.decode("entity_subtype", as: String?.self),
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

    private func nodeFilter(search: String?, nodeType: String?) -> PostgresQuery {
        "WHERE (\(search)::text IS NULL OR concept ILIKE '%' || \(search.map(escapeLike)) || '%' ESCAPE '\\') AND (\(nodeType)::text IS NULL OR node_type = \(nodeType))"
    }

    /// A page of nodes, filtered by a concept substring and a type.
    public func listNodes(offset: Int = 0, limit: Int = 20, search: String? = nil, nodeType: String? = nil, sort: NodeSort = .updatedAt) async throws -> [GraphNode] {
        let order = sort == .concept ? "concept ASC, id" : "\(sort.rawValue) DESC, id"
        return try await nodes(nodeFilter(search: search, nodeType: nodeType) + " ORDER BY \(unsafeRaw: order) OFFSET \(max(0, offset)) LIMIT \(max(0, min(limit, 1000)))")
    }

    /// The number of nodes matching the filters of ``listNodes(offset:limit:search:nodeType:sort:)``.
    public func countNodes(search: String? = nil, nodeType: String? = nil) async throws -> Int {
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
    public func searchNodes(_ text: String, limit: Int = 10, nodeType: String? = nil) async throws -> [GraphNode] {
        try await nodes(nodeFilter(search: text, nodeType: nodeType) + " ORDER BY length(concept), concept LIMIT \(limit)")
    }

    /// Trigram-similar concepts, best first (pg_trgm).
    public func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5) async throws -> [GraphNode] {
        try await nodes("WHERE public.similarity(concept, \(text)) >= \(threshold) ORDER BY public.similarity(concept, \(text)) DESC, concept LIMIT \(limit)")
    }

    /// Nodes near `embedding` in Qdrant, in Qdrant's order.
    public func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10) async throws -> [GraphNode] {
        guard let qdrant else { return [] }
        let hits = try await qdrant.query(collections.nodes, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: 1 - threshold))
        let found = Dictionary(try await nodes(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { $0.uuid.flatMap { found[$0] } }
    }

    /// `is_node_stale` (shared with ``WorkerGraphEngine``).
    public func isNodeStale(_ node: GraphNode, now: Date = Date()) -> Bool { NodeMetrics.isStale(node, now: now) }
    /// `compute_richness` (shared with ``WorkerGraphEngine``).
    public func computeRichness(_ node: GraphNode, factCount: Int, dimensionCount: Int) -> Double {
        NodeMetrics.richness(node, factCount: factCount, dimensionCount: dimensionCount)
    }

    // MARK: Edges

    private var edgeSelect: PostgresQuery {
        """
        SELECT e.id, e.source_node_id, e.target_node_id, e.relationship_type, e.weight, e.justification,
               coalesce((SELECT array_agg(ef.fact_id::text ORDER BY ef.fact_id) FROM \(table.edgeFacts) ef WHERE ef.edge_id = e.id), '{}') AS fact_ids
        FROM \(table.edges) e
        """
    }

    static func edge(_ row: PostgresRow) throws(KTDBError) -> GraphEdge {
        GraphEdge(
            id: try row.decode("id", as: UUID.self), sourceID: try row.decode("source_node_id", as: UUID.self),
            targetID: try row.decode("target_node_id", as: UUID.self), relationshipType: try row.decode("relationship_type", as: String.self),
            weight: try row.decode("weight", as: Double.self), justification: try row.decode("justification", as: String?.self),
            factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
    }

    func edges(_ tail: PostgresQuery) async throws -> [GraphEdge] {
        try await run(edgeSelect + " " + tail).rows.map { row throws(KTDBError) in try Self.edge(row) }
    }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        try await edges(of: nodeID, direction: direction, offset: 0, limit: nil)
    }

    /// The edge with `id`, or `nil`.
    public func edge(id: UUID) async throws -> GraphEdge? { try await edges("WHERE e.id = \(id)").first }

    func edges(touching ids: Set<UUID>, types: [String]?, limit: Int? = nil) async throws -> [GraphEdge] {
        guard !ids.isEmpty else { return [] }
        let list = ids.map(\.uuidString)
        return try await edges("""
            WHERE (e.source_node_id = ANY(\(list)::uuid[]) OR e.target_node_id = ANY(\(list)::uuid[]))
              AND (\(types)::text[] IS NULL OR e.relationship_type = ANY(\(types)::text[]))
            ORDER BY e.weight DESC, e.id LIMIT \(limit)
            """)
    }

    /// Nodes within `depth` hops of a node (the node itself excluded), loading edges level by level.
    public func neighbors(of nodeID: UUID, depth: Int = 1, types: [String]? = nil) async throws -> [GraphNode] {
        var reached = try await expand([nodeID], depth: depth, types: types)
        reached.remove(nodeID)
        return try await nodes(ids: Array(reached))
    }

    /// `start` and every node within `depth` hops of it, loading edges level by level.
    private func expand(_ start: Set<UUID>, depth: Int, types: [String]?) async throws -> Set<UUID> {
        var reached = start, frontier = start
        for _ in 0..<max(0, depth) where !frontier.isEmpty {
            var next: Set<UUID> = []
            for edge in try await edges(touching: frontier, types: types) {
                for id in [edge.sourceID, edge.targetID] where !reached.contains(id) { next.insert(id) }
            }
            reached.formUnion(next)
            frontier = next
        }
        return reached
    }

    /// A subgraph: the given nodes expanded `depth` times by their neighbours, plus the parents
    /// of those nodes, and the edges among them (with their fact ids).
    public func subgraph(nodeIDs: [UUID], depth: Int = 0) async throws -> (nodes: [GraphNode], edges: [GraphEdge]) {
        var ids = try await expand(Set(nodeIDs), depth: depth, types: nil)
        var nodes = try await self.nodes(ids: Array(ids))
        let parents = Set(nodes.compactMap(\.parentID)).subtracting(ids)
        if !parents.isEmpty {
            nodes += try await self.nodes(ids: Array(parents))
            ids.formUnion(parents)
        }
        let edges = try await edges(touching: ids, types: nil).filter { ids.contains($0.sourceID) && ids.contains($0.targetID) }
        return (nodes.sorted { $0.concept < $1.concept }, edges.sorted { $0.id.uuidString < $1.id.uuidString })
    }

    /// One step of a path: the node reached and the edge used (`nil` for the start).
    public struct PathStep: Sendable, Hashable {
        /// The node.
        public var nodeID: UUID
        /// The edge that led here.
        public var edge: GraphEdge?
    }

    /// Shortest paths between two nodes (edges in either direction): breadth-first, level by
    /// level with one edge query per level; stops at the first level that reaches the target.
    public func shortestPaths(from source: UUID, to target: UUID, maxDepth: Int = 6, limit: Int = 5) async throws -> [[PathStep]] {
        if source == target { return [[PathStep(nodeID: source, edge: nil)]] }
        var parents: [UUID: [(UUID, GraphEdge)]] = [:]
        var visited: Set<UUID> = [source]
        var frontier: Set<UUID> = [source]
        var found = false
        for _ in 0..<maxDepth where !frontier.isEmpty && !found {
            var next: Set<UUID> = []
            for edge in try await edges(touching: frontier, types: nil) {
                for (from, to) in [(edge.sourceID, edge.targetID), (edge.targetID, edge.sourceID)] where frontier.contains(from) && !visited.contains(to) {
                    parents[to, default: []].append((from, edge))
                    next.insert(to)
                }
            }
            visited.formUnion(next)
            frontier = next
            found = next.contains(target)
        }
        guard found else { return [] }
        var paths: [[PathStep]] = []
        func walk(_ node: UUID, _ suffix: [PathStep]) {
            guard paths.count < limit else { return }
            if node == source {
                paths.append([PathStep(nodeID: source, edge: nil)] + suffix)
                return
            }
            for (previous, edge) in parents[node] ?? [] { walk(previous, [PathStep(nodeID: node, edge: edge)] + suffix) }
        }
        walk(target, [])
        return paths
    }

    // MARK: Facts and dimensions

    /// Facts linked to a node.
    public func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] {
        try await nodeFacts(of: nodeID, offset: 0, limit: nil)
    }

    /// Facts by id (missing ones left out).
    public func facts(ids: [UUID]) async throws -> [GraphFact] {
        guard !ids.isEmpty else { return [] }
        return try FactQueries.facts(try await run(FactQueries.byIDs(ids, in: table.facts)))
    }

    /// Nodes a fact is linked to.
    public func factNodes(of factID: UUID) async throws -> [GraphNode] {
        try await nodes("WHERE id IN (SELECT node_id FROM \(table.nodeFacts) WHERE fact_id = \(factID)) ORDER BY concept")
    }

    /// Facts whose content contains `text` (case-insensitive).
    public func searchFactsText(_ text: String, limit: Int = 30, factType: String? = nil) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.containing(text, factType: factType, limit: limit, in: table.facts)))
    }

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from graph-db in Qdrant's order.
    /// `excluding` leaves facts out in Qdrant (the limit counts the facts returned).
    public func searchFacts(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        return try await load(try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter)))
    }

    /// Hybrid search: Qdrant fuses a vector prefetch and a full-text-filtered prefetch with RRF;
    /// on a Qdrant error it falls back to the vector search.
    public func hybridSearchFacts(query text: String, embedding: [Float], limit: Int = 30) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        do {
            let hits = try await qdrant.hybridQuery(collections.facts, prefetch: [
                QdrantPrefetch(vector: embedding, limit: limit * 2),
                QdrantPrefetch(vector: embedding, filter: QdrantFilter(must: [.matchText("content", text)]), limit: limit * 2),
            ], limit: limit)
            return try await load(hits)
        } catch {
            logger.debug("hybrid search failed; falling back to vector search", metadata: ["kt.error": "\(error)"])
            return try await searchFacts(embedding: embedding, limit: limit, threshold: 0)
        }
    }

    private func load(_ hits: [QdrantScoredPoint]) async throws -> [ScoredFact] {
        let found = Dictionary(try await facts(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { hit in hit.uuid.flatMap { found[$0] }.map { ScoredFact(fact: $0, score: hit.score) } }
    }

    /// Dimensions of a node with their fact ids.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        try await run("""
            SELECT d.id, d.node_id, d.model_id, d.content, d.confidence, d.batch_index,
                   coalesce((SELECT array_agg(df.fact_id::text ORDER BY df.fact_id) FROM \(table.dimensionFacts) df WHERE df.dimension_id = d.id), '{}') AS fact_ids
            FROM \(table.dimensions) d WHERE d.node_id = \(nodeID) ORDER BY d.model_id, d.batch_index
            """).rows.map { row throws(KTDBError) in
            GraphDimension(
                id: try row.decode("id", as: UUID.self), nodeID: try row.decode("node_id", as: UUID.self), modelID: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                batchIndex: try row.decode("batch_index", as: Int.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
        }
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
        let sources = Dictionary(grouping: try await run(factSourceSelect + " WHERE s.fact_id = ANY(\(facts.map(\.id.uuidString))::uuid[]) ORDER BY r.uri, s.id")
            .rows.map { row throws(KTDBError) in try GraphFactSource(row: row) }, by: \.factID)
        return facts.map { FactWithSources(fact: $0, sources: sources[$0.id] ?? []) }
    }

    /// A node's convergence report, or `nil`.
    public func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport? {
        try await run("""
            SELECT convergence_score, converged_claims, recommended_content, computed_at FROM \(table.convergenceReports) WHERE node_id = \(nodeID)
            """).first.map { row throws(KTDBError) in try GraphConvergenceReport(row: row, nodeID: nodeID) }
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
            let row = try await transaction.query("""
                INSERT INTO \(table.nodeVersions) (id, node_id, version_number, snapshot)
                SELECT \(UUID()), n.id, coalesce((SELECT max(version_number) FROM \(table.nodeVersions) WHERE node_id = n.id), 0) + 1,
                       jsonb_build_object('concept', n.concept, 'definition', n.definition, 'attractor', n.attractor, 'filter_id', n.filter_id,
                                          'max_content_tokens', n.max_content_tokens, 'fact_count', n.fact_count,
                                          'edge_count', n.edge_count, 'dimension_count', n.dimension_count)
                FROM \(table.nodes) n WHERE n.id = \(nodeID)
                RETURNING version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at
                """).rows[0]
            return try GraphNodeVersion(row: row, nodeID: nodeID)
        }
    }

    /// A node's versions, oldest first.
    public func history(of nodeID: UUID) async throws -> [NodeVersion] {
        try await run("""
            SELECT version_number, snapshot::text AS snapshot, source_node_count, is_default, created_at FROM \(table.nodeVersions)
            WHERE node_id = \(nodeID) ORDER BY version_number
            """).rows.map { row throws(KTDBError) in try GraphNodeVersion(row: row, nodeID: nodeID) }
    }

    // MARK: Admin writes (graph-db)

    /// Creates a node directly in graph-db (admin); the id is `key_to_uuid(slug(concept))`.
    @discardableResult
    public func createNode(concept: String, nodeType: String = "concept", definition: String? = nil, parentID: UUID? = nil) async throws -> GraphNode {
        let key = GraphKeys.nodeKey(concept)
        guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
        let row = try await run("""
            INSERT INTO \(table.nodes) (id, concept, node_type, definition, parent_id) VALUES (\(GraphKeys.id(forKey: key)), \(concept), \(nodeType), \(definition), \(parentID))
            ON CONFLICT (id) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type,
                definition = COALESCE(EXCLUDED.definition, nodes.definition), parent_id = COALESCE(EXCLUDED.parent_id, nodes.parent_id), updated_at = now()
            RETURNING \(unsafeRaw: Self.nodeColumns)
            """).rows[0]
        return try Self.node(row)
    }

    /// Updates a node's concept text and definition (admin); `nil` keeps a value.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    @discardableResult
    public func updateNode(id: UUID, concept: String? = nil, definition: String? = nil) async throws -> GraphNode {
        guard let row = try await run("""
            UPDATE \(table.nodes) SET concept = COALESCE(\(concept), concept), definition = COALESCE(\(definition), definition), updated_at = now()
            WHERE id = \(id) RETURNING \(unsafeRaw: Self.nodeColumns)
            """).first else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return try Self.node(row)
    }

    /// Deletes a node (admin); edges, links and dimensions go with it.
    public func deleteNode(id: UUID) async throws -> Bool {
        try await run("DELETE FROM \(table.nodes) WHERE id = \(id)").affectedRows > 0
    }

    /// Creates an edge directly in graph-db (admin); undirected types are stored with the smaller id first.
    @discardableResult
    public func createEdge(sourceID: UUID, targetID: UUID, relationshipType: String = "related", weight: Double = 0.5) async throws -> GraphEdge {
        let a = GraphKeys.nodeKey(try await requireNode(sourceID).concept), b = GraphKeys.nodeKey(try await requireNode(targetID).concept)
        let id = GraphKeys.id(forKey: GraphKeys.edgeKey(relationshipType, a, b))
        let (source, target) = GraphKeys.orderedNodeIDs(relationshipType, sourceID, targetID)
        let row = try await run("""
            INSERT INTO \(table.edges) (id, source_node_id, target_node_id, relationship_type, weight)
            VALUES (\(id), \(source), \(target), \(relationshipType), \(weight))
            ON CONFLICT ON CONSTRAINT uq_edge_source_target_type DO UPDATE SET weight = EXCLUDED.weight, updated_at = now()
            RETURNING id
            """).rows[0]
        guard let edge = try await edge(id: try row.decode(0, as: UUID.self)) else { throw KTGraphError(code: .notFound, message: "edge vanished") }
        return edge
    }

    /// Deletes an edge (admin).
    public func deleteEdge(id: UUID) async throws -> Bool {
        try await run("DELETE FROM \(table.edges) WHERE id = \(id)").affectedRows > 0
    }

    private func requireNode(_ id: UUID) async throws -> GraphNode {
        guard let node = try await node(id: id) else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return node
    }

    /// Merges `absorb` into `keep` under transaction-level advisory locks on both ids (taken in
    /// sorted order, so concurrent merges cannot deadlock): facts, edges (weights averaged when
    /// `keep` already has the edge, self-loops dropped, edge facts copied), dimensions and
    /// children move to `keep`; `absorb` is deleted. Returns the kept node.
    @discardableResult
    public func mergeNodes(keep: UUID, absorb: UUID) async throws -> GraphNode {
        guard keep != absorb else { throw KTGraphError(code: .invalidArgument, message: "cannot merge a node into itself") }
        return try await runner.withTransaction(logger: logger) { t in
            for id in [keep, absorb].sorted(by: { $0.uuidString < $1.uuidString }) {
                try await t.query("SELECT pg_advisory_xact_lock(hashtextextended(\(id.uuidString), 0))")
            }
            guard try await t.query("SELECT count(*) FROM \(table.nodes) WHERE id = ANY(\([keep.uuidString, absorb.uuidString])::uuid[])").first?.decode(0, as: Int.self) == 2 else {
                throw KTGraphError(code: .notFound, message: "both nodes must exist")
            }
            try await t.query("""
                INSERT INTO \(table.nodeFacts) (node_id, fact_id, relevance_score, stance) SELECT \(keep), fact_id, relevance_score, stance FROM \(table.nodeFacts) WHERE node_id = \(absorb)
                ON CONFLICT DO NOTHING
                """)
            // Edges of `absorb`, re-pointed at `keep`; drop self-loops; average with existing edges.
            let moved = try await t.query("""
                SELECT id, CASE WHEN source_node_id = \(absorb) THEN \(keep) ELSE source_node_id END AS s,
                       CASE WHEN target_node_id = \(absorb) THEN \(keep) ELSE target_node_id END AS t, relationship_type, weight
                FROM \(table.edges) WHERE source_node_id = \(absorb) OR target_node_id = \(absorb)
                """).rows
            for row in moved {
                let oldID = try row.decode("id", as: UUID.self)
                let s = try row.decode("s", as: UUID.self), target = try row.decode("t", as: UUID.self)
                let type = try row.decode("relationship_type", as: String.self), weight = try row.decode("weight", as: Double.self)
                guard s != target else { continue }
                let (a, b) = GraphKeys.orderedNodeIDs(type, s, target)
                let existing = try await t.query("""
                    SELECT id FROM \(table.edges) WHERE source_node_id = \(a) AND target_node_id = \(b) AND relationship_type = \(type)
                    """).first?.decode(0, as: UUID.self)
                let keptID: UUID
                if let existing {
                    try await t.query("UPDATE \(table.edges) SET weight = (weight + \(weight)) / 2, updated_at = now() WHERE id = \(existing)")
                    keptID = existing
                } else {
                    keptID = UUID()
                    try await t.query("""
                        INSERT INTO \(table.edges) (id, source_node_id, target_node_id, relationship_type, weight, justification)
                        SELECT \(keptID), \(a), \(b), relationship_type, weight, justification FROM \(table.edges) WHERE id = \(oldID)
                        """)
                }
                try await t.query("""
                    INSERT INTO \(table.edgeFacts) (edge_id, fact_id, relevance_score) SELECT \(keptID), fact_id, relevance_score FROM \(table.edgeFacts) WHERE edge_id = \(oldID)
                    ON CONFLICT DO NOTHING
                    """)
            }
            try await t.query("UPDATE \(table.dimensions) SET node_id = \(keep) WHERE node_id = \(absorb)")
            try await t.query("UPDATE \(table.nodes) SET parent_id = \(keep) WHERE parent_id = \(absorb)")
            try await t.query("DELETE FROM \(table.nodes) WHERE id = \(absorb)")
            try await GraphStats.refresh([keep], t)
            let row = try await t.query("SELECT \(unsafeRaw: Self.nodeColumns) FROM \(table.nodes) WHERE id = \(keep)").rows[0]
            return try Self.node(row)
        }
    }
}

/// Recomputes the denormalised counters of nodes (set-based; absent children count 0).
enum GraphStats {
    /// Recomputes the denormalised counts of `ids` and writes the rows whose counts changed
    /// (an unchanged node gets no new row version). Nodes are found by primary key one by one,
    /// whatever the planner's statistics say about the table.
    static func refresh(_ ids: [UUID], _ t: PostgresTransaction) async throws {
        guard !ids.isEmpty else { return }
        let changed = try await t.query("""
            SELECT m.id, x.facts, x.edges, x.children, x.dimensions
            FROM unnest(\(ids.map(\.postgresText))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id, fact_count, edge_count, child_count, dimension_count FROM nodes WHERE id = k.id OFFSET 0) m
            CROSS JOIN LATERAL (SELECT (SELECT count(*) FROM node_facts nf WHERE nf.node_id = m.id) AS facts,
                                       (SELECT count(*) FROM edges e WHERE e.source_node_id = m.id OR e.target_node_id = m.id) AS edges,
                                       (SELECT count(*) FROM nodes ch WHERE ch.parent_id = m.id) AS children,
                                       (SELECT count(*) FROM dimensions d WHERE d.node_id = m.id) AS dimensions) x
            WHERE (m.fact_count, m.edge_count, m.child_count, m.dimension_count) IS DISTINCT FROM (x.facts, x.edges, x.children, x.dimensions)
            """).rows
        guard !changed.isEmpty else { return }
        var columns: [[String]] = Array(repeating: [], count: 5)
        for row in changed {
            for index in 0..<5 { columns[index].append(try row.decode(index, as: String.self)) }
        }
        try await t.query("""
            UPDATE nodes n SET fact_count = c.facts, edge_count = c.edges, child_count = c.children, dimension_count = c.dimensions
            FROM unnest(\(columns[0])::uuid[], \(columns[1])::int[], \(columns[2])::int[], \(columns[3])::int[], \(columns[4])::int[])
                 AS c(id, facts, edges, children, dimensions)
            WHERE n.id = c.id
            """)
    }
}

/// The graph-db tables of one graph's schema, for schema-qualified SQL (named once per engine).
struct GraphTables: Sendable {
    let nodes, edges, facts, nodeFacts, edgeFacts, dimensions, dimensionFacts, nodeVersions, nodeFactRejections: TableName
    let convergenceReports, factSources, rawSources, llmUsage: TableName

    init(_ schema: SchemaName) {
        nodes = TableName("nodes", in: schema)
        edges = TableName("edges", in: schema)
        facts = TableName("facts", in: schema)
        nodeFacts = TableName("node_facts", in: schema)
        edgeFacts = TableName("edge_facts", in: schema)
        dimensions = TableName("dimensions", in: schema)
        dimensionFacts = TableName("dimension_facts", in: schema)
        nodeVersions = TableName("node_versions", in: schema)
        nodeFactRejections = TableName("node_fact_rejections", in: schema)
        convergenceReports = TableName("convergence_reports", in: schema)
        factSources = TableName("fact_sources", in: schema)
        rawSources = TableName("raw_sources", in: schema)
        llmUsage = TableName("llm_usage", in: schema)
    }
}
