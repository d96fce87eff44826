import Foundation
import KTDB
import KTQdrant
import Logging

/// A graph's nodes in write-db: create, update, parents, counters, the node searches.
struct WriteNodeStore: WorkerStore {
    let context: WorkerContext

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
            concept: try row.decode("concept", as: String.self), nodeType: try row.decode("node_type", as: NodeType.self),
            entitySubtype: try row.decode("entity_subtype", as: String?.self),
            parentID: parentKey.map(GraphKeys.id(forKey:)), sourceConceptID: sourceKey.map(GraphKeys.id(forKey:)),
            definition: try row.decode("definition", as: String?.self), definitionSource: try row.decode("definition_source", as: String?.self),
            staleAfter: try row.decode("stale_after", as: Int.self), accessCount: try row.decode("access_count", as: Int.self),
            updateCount: try row.decode("update_count", as: Int.self), factCount: try row.decode("fact_count", as: Int.self),
            edgeCount: 0, childCount: 0, dimensionCount: 0,
            createdAt: try row.decode("created_at", as: Date.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    func nodes(where condition: PostgresQuery) async throws -> [GraphNode] {
        var query: PostgresQuery = "SELECT \(unsafeRaw: Self.nodeColumns) FROM \(table.nodes) n LEFT JOIN \(table.nodeCounters) c ON c.node_key = n.key WHERE "
        query.append(condition)
        return try await run(query).rows.map { row throws(KTDBError) in try Self.node(row) }
    }

    /// The write-db key of the node with `id`.
    func nodeKey(id: UUID) async throws -> String {
        guard let key = try await run("SELECT key FROM \(table.nodes) WHERE node_uuid = \(id)").first?.decode(0, as: String.self) else {
            throw KTGraphError(code: .notFound, message: "no node with id \(id)")
        }
        return key
    }

    /// Creates or updates the node of `concept` (key `slug(concept)`); `nil` arguments keep stored
    /// values.
    @discardableResult
    func createNode(
        concept: String, nodeType: NodeType = .concept, entitySubtype: String? = nil, parentID: UUID? = nil,
        sourceConceptID: UUID? = nil, definition: String? = nil, embedding: [Float]? = nil
    ) async throws -> GraphNode {
        let key = GraphKeys.nodeKey(concept)
        guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
        guard concept.unicodeScalars.count <= 500 else { throw KTGraphError(code: .invalidArgument, message: "a concept has at most 500 characters") }
        let parentKey = try await parentID.asyncMap(nodeKey(id:))
        let sourceKey = try await sourceConceptID.asyncMap(nodeKey(id:))
        try await run(
            """
            INSERT INTO \(table.nodes) AS n (key, node_uuid, concept, node_type, entity_subtype, parent_key, source_concept_key, definition, created_at, updated_at)
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
        await vectorStore.upsertNodePoint(node, embedding: embedding)
        return node
    }

    /// Upserts many nodes in one statement (no parents, no Qdrant points); returns their ids in order.
    @discardableResult
    func createNodes(_ specs: [WorkerGraphEngine.NodeSpec]) async throws -> [UUID] {
        var keys: [String] = [], ids: [String] = [], concepts: [String] = [], types: [String] = []
        var seen: Set<String> = []
        for spec in specs {
            let key = GraphKeys.nodeKey(spec.concept)
            guard !key.isEmpty else { throw KTGraphError(code: .invalidArgument, message: "a concept needs at least one letter or digit") }
            guard seen.insert(key).inserted else { continue }
            keys.append(key); ids.append(GraphKeys.id(forKey: key).uuidString); concepts.append(spec.concept); types.append(spec.nodeType.rawValue)
        }
        guard !keys.isEmpty else { return [] }
        try await run(
            """
            INSERT INTO \(table.nodes) AS n (key, node_uuid, concept, node_type, created_at, updated_at)
            SELECT k, u::uuid, c, t, clock_timestamp(), clock_timestamp() FROM unnest(\(keys)::text[], \(ids)::text[], \(concepts)::text[], \(types)::text[]) AS x(k, u, c, t)
            ON CONFLICT (key) DO UPDATE SET concept = EXCLUDED.concept, node_type = EXCLUDED.node_type, updated_at = clock_timestamp()
            """)
        return specs.map { GraphKeys.id(forKey: GraphKeys.nodeKey($0.concept)) }
    }

    /// The node with `id`, or `nil`.
    func node(id: UUID) async throws -> GraphNode? { try await nodes(where: "n.node_uuid = \(id)").first }

    /// The nodes with these ids (missing ones are left out), in no particular order.
    func nodes(ids: [UUID]) async throws -> [GraphNode] {
        guard !ids.isEmpty else { return [] }
        return try await nodes(where: "n.node_uuid = ANY(\(ids.map(\.uuidString))::uuid[])")
    }

    func requireNode(key: String) async throws -> GraphNode {
        guard let node = try await nodes(where: "n.key = \(key)").first else {
            throw KTGraphError(code: .notFound, message: "no node with key '\(key)'")
        }
        return node
    }

    /// Sets a node's definition.
    @discardableResult
    func setDefinition(nodeID: UUID, definition: String, source: String = "synthesized") async throws -> GraphNode {
        let key = try await nodeKey(id: nodeID)
        try await run("UPDATE \(table.nodes) SET definition = \(definition), definition_source = \(source), updated_at = clock_timestamp() WHERE key = \(key)")
        return try await requireNode(key: key)
    }

    /// Sets (or with `nil` clears) a node's parent.
    @discardableResult
    func setParent(nodeID: UUID, parentID: UUID?) async throws -> GraphNode {
        let key = try await nodeKey(id: nodeID)
        var parentKey: String?
        if let parentID {
            guard parentID != nodeID else { throw KTGraphError(code: .invalidParentChain, message: "a node cannot be its own parent") }
            let candidate = try await nodeKey(id: parentID)
            try await validateChain(from: candidate, child: key)
            parentKey = candidate
        }
        try await run("UPDATE \(table.nodes) SET parent_key = \(parentKey), updated_at = clock_timestamp() WHERE key = \(key)")
        return try await requireNode(key: key)
    }

    /// Whether the node's parent chain reaches a root within `maxDepth` steps without a cycle.
    func chainReachesRoot(nodeID: UUID, maxDepth: Int = 50) async throws -> Bool {
        do {
            try await validateChain(from: try await nodeKey(id: nodeID), child: nil, maxDepth: maxDepth)
            return true
        } catch let error as KTGraphError where error.code == .invalidParentChain {
            return false
        }
    }

    func validateChain(from start: String, child: String?, maxDepth: Int = 50) async throws {
        // One recursive query walks the chain; a cycle or the child itself stops it.
        let rows = try await run(
            """
            WITH RECURSIVE chain(key, parent_key, depth, path) AS (
                SELECT key, parent_key, 1, ARRAY[key::text] FROM \(table.nodes) WHERE key = \(start)
                UNION ALL
                SELECT w.key, w.parent_key, c.depth + 1, c.path || w.key::text
                FROM chain c JOIN \(table.nodes) w ON w.key = c.parent_key
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
    func deleteNode(id: UUID) async throws {
        try await run("DELETE FROM \(table.nodes) WHERE node_uuid = \(id)")
        await vectorStore.qdrantCall("delete node point") { try await $0.delete(collections.nodes, ids: [id]) }
    }

    /// Children of a node.
    func children(of parentID: UUID) async throws -> [GraphNode] {
        let key = try await nodeKey(id: parentID)
        return try await nodes(where: "n.parent_key = \(key) ORDER BY n.concept")
    }

    /// Perspectives whose source concept is `conceptID`.
    func perspectives(of conceptID: UUID) async throws -> [GraphNode] {
        let key = try await nodeKey(id: conceptID)
        return try await nodes(where: "n.source_concept_key = \(key) AND n.node_type = 'perspective' ORDER BY n.concept")
    }

    /// Case-insensitive substring search on concepts.
    func searchNodes(_ text: String, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(
            where: """
                n.concept ILIKE '%' || \(escapeLike(text)) || '%' ESCAPE '\\' AND (\(nodeType)::text IS NULL OR n.node_type = \(nodeType))
                ORDER BY length(n.concept), n.concept LIMIT \(limit)
                """)
    }

    /// Trigram-similar concepts (pg_trgm), best first.
    func searchNodesByTrigram(_ text: String, threshold: Double = 0.3, limit: Int = 5, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await nodes(
            where: """
                public.similarity(n.concept, \(text)) >= \(threshold) AND (\(nodeType)::text IS NULL OR n.node_type = \(nodeType))
                ORDER BY public.similarity(n.concept, \(text)) DESC, n.concept LIMIT \(limit)
                """)
    }

    /// Nodes whose Qdrant vectors are within cosine distance `threshold` of `embedding`, in Qdrant's
    /// order.
    func findSimilarNodes(embedding: [Float], threshold: Double = 0.3, limit: Int = 10, nodeType: NodeType? = nil) async throws -> [GraphNode] {
        try await NodeVectors.similar(
            to: embedding, threshold: threshold, limit: limit, nodeType: nodeType, qdrant: qdrant, collection: collections.nodes, nodes: nodes(ids:))
    }

    /// Counts an access (best effort: a failure is logged, not thrown).
    func incrementAccessCount(nodeID: UUID) async { await bump(nodeID, column: "access_count") }

    /// Counts an update (best effort).
    func incrementUpdateCount(nodeID: UUID) async { await bump(nodeID, column: "update_count") }

    func bump(_ nodeID: UUID, column: String) async {
        do {
            let key = try await nodeKey(id: nodeID)
            try await run(
                """
                INSERT INTO \(table.nodeCounters) AS c (node_key, \(unsafeRaw: column), updated_at) VALUES (\(key), 1, clock_timestamp())
                ON CONFLICT (node_key) DO UPDATE SET \(unsafeRaw: column) = c.\(unsafeRaw: column) + 1, updated_at = clock_timestamp()
                """)
        } catch {
            logger.debug("counter update failed", metadata: ["kt.node_id": "\(nodeID)", "kt.error": "\(error)"])
        }
    }

    /// Updates a node's descriptive fields; `nil` keeps a value.
    @discardableResult
    func updateNode(
        id: UUID, definition: String? = nil, attractor: String? = nil, filterID: String? = nil, maxContentTokens: Int? = nil,
        enrichmentStatus: String? = nil, visibility: String? = nil, staleAfter: Int? = nil
    ) async throws -> GraphNode {
        if let maxContentTokens, maxContentTokens <= 0 { throw KTGraphError(code: .invalidArgument, message: "max content tokens must be positive") }
        if let staleAfter, staleAfter <= 0 { throw KTGraphError(code: .invalidArgument, message: "stale-after days must be positive") }
        let updated = try await run(
            """
            UPDATE \(table.nodes) SET definition = COALESCE(\(definition), definition), attractor = COALESCE(\(attractor), attractor),
                filter_id = COALESCE(\(filterID), filter_id), max_content_tokens = COALESCE(\(maxContentTokens), max_content_tokens),
                enrichment_status = COALESCE(\(enrichmentStatus), enrichment_status), visibility = COALESCE(\(visibility), visibility),
                stale_after = COALESCE(\(staleAfter), stale_after), updated_at = clock_timestamp()
            WHERE node_uuid = \(id) RETURNING key
            """)
        guard updated.first != nil, let node = try await node(id: id) else { throw KTGraphError(code: .notFound, message: "no node with id \(id)") }
        return node
    }
}

extension WorkerGraphEngine {
    /// A node to create in ``createNodes(_:)``.
    public struct NodeSpec: Sendable, Hashable {
        /// The concept.
        public var concept: String
        /// The node type.
        public var nodeType: NodeType
        /// Creates a spec.
        public init(concept: String, nodeType: NodeType = .concept) {
            self.concept = concept
            self.nodeType = nodeType
        }
    }
}
