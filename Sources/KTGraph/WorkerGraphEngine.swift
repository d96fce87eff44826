public import Foundation
public import KTDB
public import KTQdrant
public import Logging

/// The engine of graph-building workers: write-db and Qdrant only.
///
/// It is built from a write-db ``DatabaseSession`` (bound to the graph's schema), an optional
/// embedding service and an optional Qdrant client with the graph's own collections. Nothing in
/// its API accepts a graph-db session, so a worker cannot reach graph-db (ADR-001).
///
/// Every write is its own short transaction and is committed when the call returns; upserts are
/// keyed on the deterministic key, keep existing non-null values when given `nil`, and set
/// `updated_at` to `clock_timestamp()` so the sync sees them. Qdrant is an index over write-db:
/// a failed Qdrant write is logged and does not undo the committed row (re-running the call
/// converges).
public struct WorkerGraphEngine: Sendable {
    /// The write-db session (schema-bound).
    public let writeSession: DatabaseSession
    /// The embedding service, if any.
    public let embedder: (any EmbeddingService)?
    /// The Qdrant client, if any.
    public let qdrant: QdrantClient?
    /// The graph's collections (`<slug>__facts`, ...).
    public let collections: QdrantCollections
    /// Well-known root keys a parent chain must end in; empty accepts any root (a node without parent).
    public var rootKeys: Set<String>
    let logger: Logger

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
        self.embedder = embedder
        self.qdrant = qdrant
        self.collections = collections
        self.rootKeys = rootKeys
        self.logger = logger
    }

    @discardableResult
    func run(_ query: PostgresQuery) async throws -> PostgresResult {
        try await writeSession.query(query, logger: logger)
    }

    // MARK: Nodes

    static let nodeColumns = """
        n.key, n.node_uuid, n.concept, n.node_type, n.entity_subtype, n.parent_key, n.source_concept_key, n.definition,
        n.definition_source, n.stale_after, cardinality(n.fact_ids) AS fact_count, coalesce(c.access_count, 0) AS access_count,
        coalesce(c.update_count, 0) AS update_count, n.created_at, n.updated_at
        """

    static func node(_ row: PostgresRow) throws(KTDBError) -> GraphNode {
        let parentKey = try row.decode("parent_key", as: String?.self)
        let sourceKey = try row.decode("source_concept_key", as: String?.self)
        return GraphNode(
            id: try row.decode("node_uuid", as: UUID.self),
            concept: try row.decode("concept", as: String.self), nodeType: try row.decode("node_type", as: String.self),
            entitySubtype: try row.decode("entity_subtype", as: String?.self),
            parentID: parentKey.map(GraphKeys.id(forKey:)), sourceConceptID: sourceKey.map(GraphKeys.id(forKey:)),
            definition: try row.decode("definition", as: String?.self), definitionSource: try row.decode("definition_source", as: String?.self),
            staleAfter: try row.decode("stale_after", as: Int.self), accessCount: try row.decode("access_count", as: Int.self),
            updateCount: try row.decode("update_count", as: Int.self), factCount: try row.decode("fact_count", as: Int.self),
            edgeCount: 0, childCount: 0, dimensionCount: 0,
            createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    private func nodes(where condition: PostgresQuery) async throws -> [GraphNode] {
        var query: PostgresQuery = "SELECT \(unsafeRaw: Self.nodeColumns) FROM write_nodes n LEFT JOIN write_node_counters c ON c.node_key = n.key WHERE "
        query.append(condition)
        return try await run(query).rows.map { row throws(KTDBError) in try Self.node(row) }
    }

    /// The write-db key of the node with `id`.
    ///
    /// - Throws: ``KTGraphError/Code/notFound``.
    public func nodeKey(id: UUID) async throws -> String {
        guard let key = try await run("SELECT key FROM write_nodes WHERE node_uuid = \(id)").first?.decode(0, as: String.self) else {
            throw KTGraphError(code: .notFound, message: "no node with id \(id)")
        }
        return key
    }

    /// Creates or updates the node of `concept` (key `slug(concept)`); `nil` arguments keep stored values.
    /// With an embedding (given, or computed by the embedder) the node's Qdrant point is upserted.
    ///
    /// - Throws: ``KTGraphError/Code/invalidArgument`` for a concept without letters or digits,
    ///   ``KTGraphError/Code/notFound`` for an unknown parent or source concept.
    @discardableResult
    public func createNode(
        concept: String, nodeType: String = "concept", entitySubtype: String? = nil, parentID: UUID? = nil,
        sourceConceptID: UUID? = nil, definition: String? = nil, embedding: [Float]? = nil
    ) async throws -> GraphNode {
        let key = GraphKeys.nodeKey(concept)
        guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
        guard concept.unicodeScalars.count <= 500 else { throw KTGraphError(code: .invalidArgument, message: "a concept has at most 500 characters") }
        let parentKey = try await parentID.asyncMap(nodeKey(id:))
        let sourceKey = try await sourceConceptID.asyncMap(nodeKey(id:))
        try await run("""
            INSERT INTO write_nodes AS n (key, node_uuid, concept, node_type, entity_subtype, parent_key, source_concept_key, definition, created_at, updated_at)
            VALUES (\(key), \(GraphKeys.id(forKey: key)), \(concept), \(nodeType), \(entitySubtype), \(parentKey), \(sourceKey), \(definition), clock_timestamp(), clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET
                concept = EXCLUDED.concept, node_type = EXCLUDED.node_type,
                entity_subtype = COALESCE(EXCLUDED.entity_subtype, n.entity_subtype),
                parent_key = COALESCE(EXCLUDED.parent_key, n.parent_key),
                source_concept_key = COALESCE(EXCLUDED.source_concept_key, n.source_concept_key),
                definition = COALESCE(EXCLUDED.definition, n.definition),
                updated_at = clock_timestamp()
            """)
        let node = try await requireNode(key: key)
        await upsertNodePoint(node, embedding: embedding)
        return node
    }

    /// A node to create in ``createNodes(_:)``.
    public struct NodeSpec: Sendable, Hashable {
        /// The concept.
        public var concept: String
        /// The node type.
        public var nodeType: String
        /// Creates a spec.
        public init(concept: String, nodeType: String = "concept") {
            self.concept = concept
            self.nodeType = nodeType
        }
    }

    /// Upserts many nodes in one statement (no parents, no Qdrant points); returns their ids in order.
    @discardableResult
    public func createNodes(_ specs: [NodeSpec]) async throws -> [UUID] {
        var keys: [String] = [], ids: [String] = [], concepts: [String] = [], types: [String] = []
        var seen: Set<String> = []
        for spec in specs {
            let key = GraphKeys.nodeKey(spec.concept)
            guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
            guard seen.insert(key).inserted else { continue }
            keys.append(key); ids.append(GraphKeys.id(forKey: key).uuidString); concepts.append(spec.concept); types.append(spec.nodeType)
        }
        guard !keys.isEmpty else { return [] }
        try await run("""
            INSERT INTO write_nodes AS n (key, node_uuid, concept, node_type, created_at, updated_at)
            SELECT k, u::uuid, c, t, clock_timestamp(), clock_timestamp() FROM unnest(\(keys)::text[], \(ids)::text[], \(concepts)::text[], \(types)::text[]) AS x(k, u, c, t)
            ON CONFLICT (key) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, updated_at = clock_timestamp()
            """)
        return specs.map { GraphKeys.id(forKey: GraphKeys.nodeKey($0.concept)) }
    }

    /// The node with `id`, or `nil`.
    public func node(id: UUID) async throws -> GraphNode? { try await nodes(where: "n.node_uuid = \(id)").first }

    /// The nodes with these ids (missing ones are left out), in no particular order.
    public func nodes(ids: [UUID]) async throws -> [GraphNode] {
        guard !ids.isEmpty else { return [] }
        return try await nodes(where: "n.node_uuid = ANY(\(ids.map(\.uuidString))::uuid[])")
    }

    private func requireNode(key: String) async throws -> GraphNode {
        guard let node = try await nodes(where: "n.key = \(key)").first else {
            throw KTGraphError(code: .notFound, message: "no node with key '\(key)'")
        }
        return node
    }

    /// Sets a node's definition.
    @discardableResult
    public func setDefinition(nodeID: UUID, definition: String, source: String = "synthesized") async throws -> GraphNode {
        let key = try await nodeKey(id: nodeID)
        try await run("UPDATE write_nodes SET definition = \(definition), definition_source = \(source), updated_at = clock_timestamp() WHERE key = \(key)")
        return try await requireNode(key: key)
    }

    /// Sets (or with `nil` clears) a node's parent. The chain from the new parent must end at a
    /// root (in ``rootKeys`` when that is not empty) within 50 steps, without a cycle.
    ///
    /// - Throws: ``KTGraphError/Code/invalidParentChain`` for a self-parent, a cycle or a chain too long.
    @discardableResult
    public func setParent(nodeID: UUID, parentID: UUID?) async throws -> GraphNode {
        let key = try await nodeKey(id: nodeID)
        var parentKey: String?
        if let parentID {
            guard parentID != nodeID else { throw KTGraphError(code: .invalidParentChain, message: "a node cannot be its own parent") }
            let candidate = try await nodeKey(id: parentID)
            try await validateChain(from: candidate, child: key)
            parentKey = candidate
        }
        try await run("UPDATE write_nodes SET parent_key = \(parentKey), updated_at = clock_timestamp() WHERE key = \(key)")
        return try await requireNode(key: key)
    }

    /// Whether the node's parent chain reaches a root within `maxDepth` steps without a cycle.
    public func chainReachesRoot(nodeID: UUID, maxDepth: Int = 50) async throws -> Bool {
        do {
            try await validateChain(from: try await nodeKey(id: nodeID), child: nil, maxDepth: maxDepth)
            return true
        } catch let error as KTGraphError where error.code == .invalidParentChain {
            return false
        }
    }

    private func validateChain(from start: String, child: String?, maxDepth: Int = 50) async throws {
        // One recursive query walks the chain; a cycle or the child itself stops it.
        let rows = try await run("""
            WITH RECURSIVE chain(key, parent_key, depth, path) AS (
                SELECT key, parent_key, 1, ARRAY[key::text] FROM write_nodes WHERE key = \(start)
                UNION ALL
                SELECT w.key, w.parent_key, c.depth + 1, c.path || w.key::text
                FROM chain c JOIN write_nodes w ON w.key = c.parent_key
                WHERE NOT w.key = ANY(c.path) AND c.depth <= \(maxDepth)
            )
            SELECT key, parent_key, depth, path FROM chain ORDER BY depth DESC LIMIT 1
            """)
        guard let last = rows.first else { throw KTGraphError(code: .notFound, message: "no node with key '\(start)'") }
        let path = try last.decode("path", as: [String].self)
        if let child, path.contains(child) {
            throw KTGraphError(code: .invalidParentChain, message: "'\(child)' is already an ancestor of '\(start)': the parent would create a cycle")
        }
        let depth = try last.decode("depth", as: Int.self)
        guard try last.decode("parent_key", as: String?.self) == nil, depth <= maxDepth else {
            throw KTGraphError(code: .invalidParentChain, message: "the parent chain of '\(start)' does not reach a root within \(maxDepth) steps")
        }
        let root = try last.decode("key", as: String.self)
        guard rootKeys.isEmpty || rootKeys.contains(root) else {
            throw KTGraphError(code: .invalidParentChain, message: "the parent chain of '\(start)' ends at '\(root)', which is not a root")
        }
    }

    /// Deletes a node in write-db (the sync deletes it in graph-db) and its Qdrant point.
    public func deleteNode(id: UUID) async throws {
        try await run("DELETE FROM write_nodes WHERE node_uuid = \(id)")
        await qdrantCall("delete node point") { try await $0.delete(collections.nodes, ids: [id]) }
    }

    /// Children of a node.
    public func children(of parentID: UUID) async throws -> [GraphNode] {
        let key = try await nodeKey(id: parentID)
        return try await nodes(where: "n.parent_key = \(key) ORDER BY n.concept")
    }

    /// Perspectives whose source concept is `conceptID`.
    public func perspectives(of conceptID: UUID) async throws -> [GraphNode] {
        let key = try await nodeKey(id: conceptID)
        return try await nodes(where: "n.source_concept_key = \(key) AND n.node_type = 'perspective' ORDER BY n.concept")
    }

    /// Case-insensitive substring search on concepts.
    public func searchNodes(_ text: String, limit: Int = 10, nodeType: String? = nil) async throws -> [GraphNode] {
        try await nodes(where: """
            n.concept ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\' AND (\(nodeType)::text IS NULL OR n.node_type = \(nodeType))
            ORDER BY length(n.concept), n.concept LIMIT \(limit)
            """)
    }

    /// Trigram-similar concepts (pg_trgm), best first.
    public func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: String? = nil) async throws -> [GraphNode] {
        try await nodes(where: """
            public.similarity(n.concept, \(text)) >= \(threshold) AND (\(nodeType)::text IS NULL OR n.node_type = \(nodeType))
            ORDER BY public.similarity(n.concept, \(text)) DESC, n.concept LIMIT \(limit)
            """)
    }

    /// Nodes whose Qdrant vectors are within cosine distance `threshold` of `embedding`, in Qdrant's order.
    public func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: String? = nil) async throws -> [GraphNode] {
        guard let qdrant else { return [] }
        let filter = nodeType.map { QdrantFilter(must: [.match("node_type", .string($0))]) }
        let hits = try await qdrant.query(collections.nodes, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: 1 - threshold, filter: filter))
        let found = Dictionary(try await nodes(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { $0.uuid.flatMap { found[$0] } }
    }

    /// Counts an access (best effort: a failure is logged, not thrown).
    public func incrementAccessCount(nodeID: UUID) async { await bump(nodeID, column: "access_count") }
    /// Counts an update (best effort).
    public func incrementUpdateCount(nodeID: UUID) async { await bump(nodeID, column: "update_count") }

    private func bump(_ nodeID: UUID, column: String) async {
        do {
            let key = try await nodeKey(id: nodeID)
            try await run("""
                INSERT INTO write_node_counters AS c (node_key, \(unsafeRaw: column), updated_at) VALUES (\(key), 1, clock_timestamp())
                ON CONFLICT (node_key) DO UPDATE SET \(unsafeRaw: column) = c.\(unsafeRaw: column) + 1, updated_at = clock_timestamp()
                """)
        } catch {
            logger.debug("counter update failed", metadata: ["kt.node_id": "\(nodeID)", "kt.error": "\(error)"])
        }
    }

    /// `is_node_stale` (shared with ``ReadGraphEngine``).
    public func isNodeStale(_ node: GraphNode, now: Date = Date()) -> Bool { NodeMetrics.isStale(node, now: now) }
    /// `compute_richness` (shared with ``ReadGraphEngine``).
    public func computeRichness(_ node: GraphNode, factCount: Int, dimensionCount: Int) -> Double {
        NodeMetrics.richness(node, factCount: factCount, dimensionCount: dimensionCount)
    }

    // MARK: Facts

    /// Creates or updates a fact (id given, or a new UUID) and its Qdrant point (payload
    /// `content`, `fact_type`, `node_ids`).
    @discardableResult
    public func createFact(content: String, factType: String = "claim", id: UUID = UUID(), embedding: [Float]? = nil) async throws -> GraphFact {
        guard !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw KTGraphError(code: .invalidArgument, message: "a fact needs content")
        }
        let row = try await run("""
            INSERT INTO write_facts AS f (id, content, fact_type, created_at, updated_at) VALUES (\(id), \(content), \(factType), clock_timestamp(), clock_timestamp())
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, fact_type = EXCLUDED.fact_type, updated_at = clock_timestamp()
            RETURNING id, content, fact_type, created_at
            """).rows[0]
        let fact = try GraphFact(row: row)
        await upsertFactPoints([fact], embeddings: embedding.map { [$0] })
        return fact
    }

    /// Creates many facts in one statement, and their Qdrant points in chunks when an embedder is set.
    @discardableResult
    public func createFacts(_ facts: [(content: String, factType: String)]) async throws -> [GraphFact] {
        guard !facts.isEmpty else { return [] }
        let ids = facts.map { _ in UUID().uuidString }
        let rows = try await run("""
            INSERT INTO write_facts (id, content, fact_type, created_at, updated_at)
            SELECT i::uuid, c, t, clock_timestamp(), clock_timestamp() FROM unnest(\(ids)::text[], \(facts.map(\.content))::text[], \(facts.map(\.factType))::text[]) AS x(i, c, t)
            RETURNING id, content, fact_type, created_at
            """).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
        await upsertFactPoints(rows, embeddings: nil)
        return rows
    }

    /// Deletes a fact, removes it from every node, edge and dimension, and deletes its Qdrant point.
    public func deleteFact(id: UUID) async throws {
        try await writeSession.withTransaction(logger: logger) { transaction in
            let text = id.uuidString.lowercased()
            try await transaction.query("DELETE FROM write_facts WHERE id = \(id)")
            for table in ["write_nodes", "write_edges", "write_dimensions"] {
                try await transaction.query("""
                    UPDATE \(unsafeRaw: table) SET fact_ids = array_remove(fact_ids, \(text)), updated_at = clock_timestamp() WHERE fact_ids @> ARRAY[\(text)]::text[]
                    """)
            }
        }
        await qdrantCall("delete fact point") { try await $0.delete(collections.facts, ids: [id]) }
    }

    /// Facts by id (missing ones left out).
    public func facts(ids: [UUID]) async throws -> [GraphFact] {
        guard !ids.isEmpty else { return [] }
        return try FactQueries.facts(try await run(FactQueries.byIDs(ids, in: Self.writeFacts)))
    }

    /// The facts linked to a node (from `write_nodes.fact_ids`).
    public func nodeFacts(of nodeID: UUID) async throws -> [GraphFact] {
        try await run("""
            SELECT f.id, f.content, f.fact_type, f.created_at FROM write_nodes n JOIN write_facts f ON f.id::text = ANY(n.fact_ids)
            WHERE n.node_uuid = \(nodeID) ORDER BY f.created_at, f.id
            """).rows.map { row throws(KTDBError) in try GraphFact(row: row) }
    }

    /// Links a fact to a node (no duplicate ids) and puts the node in the fact's Qdrant `node_ids`.
    public func linkFactToNode(nodeID: UUID, factID: UUID) async throws {
        try await linkFacts([(nodeID, factID)])
    }

    /// Links many (node, fact) pairs in one statement; Qdrant `node_ids` follow.
    public func linkFacts(_ links: [(nodeID: UUID, factID: UUID)]) async throws {
        guard !links.isEmpty else { return }
        // One statement: append what is missing, keeping each id once.
        try await run("""
            UPDATE write_nodes n SET fact_ids = ARRAY(SELECT DISTINCT unnest(n.fact_ids || x.added)), updated_at = clock_timestamp()
            FROM (SELECT node::uuid AS node, array_agg(DISTINCT lower(fact)) AS added
                  FROM unnest(\(links.map { $0.nodeID.uuidString })::text[], \(links.map { $0.factID.uuidString })::text[]) AS l(node, fact) GROUP BY node) x
            WHERE n.node_uuid = x.node AND NOT n.fact_ids @> x.added
            """)
        await syncNodeIDsPayload(factIDs: Set(links.map(\.factID)))
    }

    /// Removes a fact from a node and the node from the fact's Qdrant `node_ids`.
    public func unlinkFactFromNode(nodeID: UUID, factID: UUID) async throws {
        try await run("""
            UPDATE write_nodes SET fact_ids = array_remove(fact_ids, \(factID.uuidString.lowercased())), updated_at = clock_timestamp()
            WHERE node_uuid = \(nodeID) AND fact_ids @> ARRAY[\(factID.uuidString.lowercased())]::text[]
            """)
        await syncNodeIDsPayload(factIDs: [factID])
    }

    /// Records that a fact was rejected for a node (idempotent); the node is touched so the sync
    /// drops the link from graph-db.
    public func recordFactRejection(nodeID: UUID, factID: UUID) async throws {
        try await writeSession.withTransaction(logger: logger) { t in
            try await t.query("""
                INSERT INTO write_node_fact_rejections (id, node_id, fact_id) VALUES (\(UUID()), \(nodeID), \(factID)) ON CONFLICT DO NOTHING
                """)
            try await t.query("UPDATE write_nodes SET updated_at = clock_timestamp() WHERE node_uuid = \(nodeID)")
        }
    }

    /// Facts rejected for a node.
    public func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID> {
        Set(try await run("SELECT fact_id FROM write_node_fact_rejections WHERE node_id = \(nodeID)").uuids(0))
    }

    /// Facts near `embedding` in Qdrant (score ≥ `threshold`), loaded from write-db in Qdrant's order.
    public func searchFactPool(embedding: [Float], limit: Int = 30, threshold: Double = 0.5, excluding: Set<UUID> = []) async throws -> [ScoredFact] {
        guard let qdrant else { return [] }
        let filter = excluding.isEmpty ? nil : QdrantFilter(mustNot: [.hasID(Array(excluding))])
        let hits = try await qdrant.query(collections.facts, QdrantQuery(vector: embedding, limit: limit, scoreThreshold: threshold, filter: filter))
        let found = Dictionary(try await facts(ids: hits.compactMap(\.uuid)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return hits.compactMap { hit in hit.uuid.flatMap { found[$0] }.map { ScoredFact(fact: $0, score: hit.score) } }
    }

    /// Facts whose content contains `text` (case-insensitive), newest first.
    public func searchFactPoolText(_ text: String, limit: Int = 30) async throws -> [GraphFact] {
        try FactQueries.facts(try await run(FactQueries.containing(text, factType: nil, limit: limit, in: Self.writeFacts)))
    }

    // MARK: Edges

    static func edge(_ row: PostgresRow) throws(KTDBError) -> GraphEdge {
        GraphEdge(
            id: GraphKeys.id(forKey: try row.decode("key", as: String.self)),
            sourceID: GraphKeys.id(forKey: try row.decode("source_node_key", as: String.self)),
            targetID: GraphKeys.id(forKey: try row.decode("target_node_key", as: String.self)),
            relationshipType: try row.decode("relationship_type", as: String.self), weight: try row.decode("weight", as: Double.self),
            justification: try row.decode("justification", as: String?.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
    }

    /// Creates or updates the edge `type(source, target)` (key order-insensitive for undirected types).
    ///
    /// - Throws: ``KTGraphError/Code/notFound`` when either node is missing.
    @discardableResult
    public func createEdge(
        sourceID: UUID, targetID: UUID, relationshipType: String = "related", weight: Double = 0.5,
        justification: String? = nil, factIDs: [UUID] = []
    ) async throws -> GraphEdge {
        guard sourceID != targetID else { throw KTGraphError(code: .invalidArgument, message: "an edge needs two different nodes") }
        let sourceKey = try await nodeKey(id: sourceID), targetKey = try await nodeKey(id: targetID)
        let key = GraphKeys.edgeKey(relationshipType, sourceKey, targetKey)
        let (a, b) = GraphKeys.orderedNodeKeys(relationshipType, sourceKey, targetKey)
        let row = try await run("""
            INSERT INTO write_edges AS e (key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids, created_at, updated_at)
            VALUES (\(key), \(a), \(b), \(relationshipType), \(weight), \(justification), \(factIDs.map { $0.uuidString.lowercased() })::text[], clock_timestamp(), clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET weight = EXCLUDED.weight, justification = COALESCE(EXCLUDED.justification, e.justification),
                fact_ids = ARRAY(SELECT DISTINCT unnest(e.fact_ids || EXCLUDED.fact_ids)), updated_at = clock_timestamp()
            RETURNING key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids
            """).rows[0]
        return try Self.edge(row)
    }

    /// Adds a fact to an edge's `fact_ids`.
    public func linkFactToEdge(_ edge: GraphEdge, factID: UUID) async throws {
        let key = try await edgeKey(edge)
        try await run("""
            UPDATE write_edges SET fact_ids = fact_ids || ARRAY[\(factID.uuidString.lowercased())]::text[], updated_at = clock_timestamp()
            WHERE key = \(key) AND NOT fact_ids @> ARRAY[\(factID.uuidString.lowercased())]::text[]
            """)
    }

    /// Deletes an edge in write-db (the sync deletes it in graph-db).
    public func deleteEdge(_ edge: GraphEdge) async throws {
        try await run("DELETE FROM write_edges WHERE key = \(try await edgeKey(edge))")
    }

    private func edgeKey(_ edge: GraphEdge) async throws -> String {
        GraphKeys.edgeKey(edge.relationshipType, try await nodeKey(id: edge.sourceID), try await nodeKey(id: edge.targetID))
    }

    /// Edges of a node.
    public func edges(of nodeID: UUID, direction: EdgeDirection = .both) async throws -> [GraphEdge] {
        let key = try await nodeKey(id: nodeID)
        let condition: PostgresQuery = switch direction {
        case .outgoing: "source_node_key = \(key)"
        case .incoming: "target_node_key = \(key)"
        case .both: "(source_node_key = \(key) OR target_node_key = \(key))"
        }
        var query: PostgresQuery = "SELECT key, source_node_key, target_node_key, relationship_type, weight, justification, fact_ids FROM write_edges WHERE "
        query.append(condition)
        query.append(" ORDER BY key")
        return try await run(query).rows.map { row throws(KTDBError) in try Self.edge(row) }
    }

    // MARK: Dimensions

    /// Creates or updates the dimension `node:model:batch`.
    @discardableResult
    public func addDimension(
        nodeID: UUID, modelID: String, content: String, confidence: Double? = nil, batchIndex: Int = 0, factIDs: [UUID] = [],
        isDefinitive: Bool = false
    ) async throws -> GraphDimension {
        let nodeKey = try await nodeKey(id: nodeID)
        let key = GraphKeys.dimensionKey(nodeKey: nodeKey, modelID: modelID, batchIndex: batchIndex)
        try await run("""
            INSERT INTO write_dimensions AS d (key, node_key, model_id, content, confidence, batch_index, fact_count, is_definitive, fact_ids, created_at, updated_at)
            VALUES (\(key), \(nodeKey), \(modelID), \(content), \(confidence), \(batchIndex), \(factIDs.count), \(isDefinitive),
                    \(factIDs.map { $0.uuidString.lowercased() })::text[], clock_timestamp(), clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, confidence = COALESCE(EXCLUDED.confidence, d.confidence),
                fact_ids = EXCLUDED.fact_ids, fact_count = EXCLUDED.fact_count, is_definitive = EXCLUDED.is_definitive, updated_at = clock_timestamp()
            """)
        return GraphDimension(id: GraphKeys.id(forKey: key), nodeID: nodeID, modelID: modelID, content: content, confidence: confidence,
                              batchIndex: batchIndex, factIDs: factIDs)
    }

    /// Dimensions of a node.
    public func dimensions(of nodeID: UUID) async throws -> [GraphDimension] {
        let key = try await nodeKey(id: nodeID)
        return try await run("""
            SELECT key, model_id, content, confidence, batch_index, fact_ids FROM write_dimensions WHERE node_key = \(key) ORDER BY model_id, batch_index
            """).rows.map { row throws(KTDBError) in
            GraphDimension(
                id: GraphKeys.id(forKey: try row.decode("key", as: String.self)), nodeID: nodeID, modelID: try row.decode("model_id", as: String.self),
                content: try row.decode("content", as: String.self), confidence: try row.decode("confidence", as: Double?.self),
                batchIndex: try row.decode("batch_index", as: Int.self), factIDs: uuids(try row.decode("fact_ids", as: [String].self)))
        }
    }

    /// Deletes one dimension (the sync deletes it in graph-db too, unlike the original).
    public func deleteDimension(nodeID: UUID, modelID: String, batchIndex: Int = 0) async throws {
        let key = GraphKeys.dimensionKey(nodeKey: try await nodeKey(id: nodeID), modelID: modelID, batchIndex: batchIndex)
        try await run("DELETE FROM write_dimensions WHERE key = \(key)")
    }

    /// Deletes every dimension of a node.
    public func deleteDimensions(nodeID: UUID) async throws {
        try await run("DELETE FROM write_dimensions WHERE node_key = \(try await nodeKey(id: nodeID))")
    }

    // MARK: Qdrant

    func upsertNodePoint(_ node: GraphNode, embedding: [Float]?) async {
        guard qdrant != nil else { return }
        var vector = embedding
        if vector == nil, let embedder { vector = try? await embedder.embed(node.concept) }
        guard let vector else { return }
        await qdrantCall("upsert node point") {
            try await $0.upsert(collections.nodes, points: [QdrantPoint(id: node.id, vector: vector, payload: [
                "concept": .string(node.concept), "node_type": .string(node.nodeType),
            ])])
        }
    }

    func upsertFactPoints(_ facts: [GraphFact], embeddings: [[Float]]?) async {
        guard qdrant != nil, !facts.isEmpty else { return }
        var vectors = embeddings
        if vectors == nil, let embedder { vectors = try? await embedder.embed(facts.map(\.content)) }
        guard let vectors, vectors.count == facts.count else { return }
        let nodeIDs = (try? await nodeIDsByFact(Set(facts.map(\.id)))) ?? [:]
        let points = zip(facts, vectors).map { fact, vector in
            QdrantPoint(id: fact.id, vector: vector, payload: [
                "content": .string(fact.content), "fact_type": .string(fact.factType),
                "node_ids": .array((nodeIDs[fact.id] ?? []).map { .string($0.uuidString.lowercased()) }),
            ])
        }
        await qdrantCall("upsert fact points") { try await $0.upsertChunked(collections.facts, points: points) }
    }

    private func nodeIDsByFact(_ factIDs: Set<UUID>) async throws -> [UUID: [UUID]] {
        let texts = factIDs.map { $0.uuidString.lowercased() }
        var result: [UUID: [UUID]] = [:]
        for row in try await run("""
            SELECT f AS fact_id, array_agg(n.node_uuid::text ORDER BY n.node_uuid) AS node_ids
            FROM write_nodes n, unnest(n.fact_ids) f WHERE n.fact_ids && \(texts)::text[] AND f = ANY(\(texts)::text[]) GROUP BY f
            """).rows {
            if let fact = UUID(uuidString: try row.decode("fact_id", as: String.self)) {
                result[fact] = uuids(try row.decode("node_ids", as: [String].self))
            }
        }
        return result
    }

    /// Sets each fact's Qdrant `node_ids` to the nodes that list it in write-db (the whole set,
    /// so concurrent workers converge on the stored truth).
    private func syncNodeIDsPayload(factIDs: Set<UUID>) async {
        guard qdrant != nil, !factIDs.isEmpty else { return }
        do {
            let byFact = try await nodeIDsByFact(factIDs)
            for fact in factIDs {
                let ids = (byFact[fact] ?? []).map { JSONValue.string($0.uuidString.lowercased()) }
                await qdrantCall("set node_ids") { try await $0.setPayload(collections.facts, payload: ["node_ids": .array(ids)], ids: [fact]) }
            }
        } catch {
            logger.warning("could not read node ids for the Qdrant payload", metadata: ["kt.error": "\(error)"])
        }
    }

    private func qdrantCall(_ what: String, _ body: (QdrantClient) async throws -> Void) async {
        guard let qdrant else { return }
        do {
            try await body(qdrant)
        } catch {
            logger.warning("Qdrant call failed; write-db is committed and a retry converges", metadata: ["kt.operation": "\(what)", "kt.error": "\(error)"])
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
func escapeLike(_ text: String) -> String {
    text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
}

extension Optional {
    func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        switch self {
        case .some(let value): return try await transform(value)
        case .none: return nil
        }
    }
}
