public import Foundation
import KTDB

/// A node as either engine returns it. Worker reads fill it from write-db (counts are 0 there:
/// the sync maintains them in graph-db); read-engine reads from graph-db.
public struct GraphNode: Sendable, Hashable {
    /// `key_to_uuid(key)`.
    public var id: UUID
    /// The write-db key (`slug(concept)`), derived from ``concept``.
    public var key: String { GraphKeys.nodeKey(concept) }
    /// The concept text.
    public var concept: String
    /// `concept`, `entity`, `perspective`, ...
    public var nodeType: NodeType
    /// Optional entity subtype.
    public var entitySubtype: String?
    /// The parent node's id.
    public var parentID: UUID?
    /// The source concept's id (for perspectives).
    public var sourceConceptID: UUID?
    /// The definition text.
    public var definition: String?
    /// Where the definition came from.
    public var definitionSource: String?
    /// Days after `updatedAt` when the node is stale.
    public var staleAfter: Int
    /// Accesses counted.
    public var accessCount: Int
    /// Updates counted.
    public var updateCount: Int
    /// Linked facts (graph-db: maintained by sync; write-db: length of `fact_ids`).
    public var factCount: Int
    /// Edges touching the node (graph-db only).
    public var edgeCount: Int
    /// Children (graph-db only).
    public var childCount: Int
    /// Dimensions (graph-db only).
    public var dimensionCount: Int
    /// Creation time.
    public var createdAt: Date
    /// Last update time.
    public var updatedAt: Date
}

/// An edge between two nodes.
public struct GraphEdge: Sendable, Hashable {
    /// `key_to_uuid(edge key)`.
    public var id: UUID
    /// Source node id (for undirected types the smaller UUID in graph-db).
    public var sourceID: UUID
    /// Target node id.
    public var targetID: UUID
    /// Relationship type (`related`, `draws_from`, ...).
    public var relationshipType: RelationshipType
    /// Weight.
    public var weight: Double
    /// Why the edge exists.
    public var justification: String?
    /// Supporting facts.
    public var factIDs: [UUID]
}

/// A fact.
public struct GraphFact: Sendable, Hashable {
    /// The fact's id (the same in write-db, graph-db and Qdrant).
    public var id: UUID
    /// The statement.
    public var content: String
    /// Its type (`claim`, `measurement`, ...).
    public var factType: FactType
    /// Creation time.
    public var createdAt: Date
}

/// A dimension: one model's view of a node.
public struct GraphDimension: Sendable, Hashable {
    /// `key_to_uuid(dimension key)`.
    public var id: UUID
    /// The node.
    public var nodeID: UUID
    /// The model.
    public var modelID: String
    /// The text.
    public var content: String
    /// Confidence, if given.
    public var confidence: Double?
    /// Batch index.
    public var batchIndex: Int
    /// Supporting facts.
    public var factIDs: [UUID]
}

/// A fact found by a search, with its score.
public struct ScoredFact: Sendable, Hashable {
    /// The fact.
    public var fact: GraphFact
    /// Cosine similarity (vector search) or rank score.
    public var score: Double
}

/// Which edges of a node.
public enum EdgeDirection: Sendable, Hashable {
    /// Edges leaving the node.
    case outgoing
    /// Edges arriving at the node.
    case incoming
    /// Both.
    case both
}

/// Shared node arithmetic, written once for both engines (the ADR listed the duplication as a cost).
public enum NodeMetrics {
    /// `is_node_stale`: stale once `now` is past `updatedAt + staleAfter` days.
    public static func isStale(_ node: GraphNode, now: Date = Date()) -> Bool {
        now > node.updatedAt.addingTimeInterval(Double(node.staleAfter) * 86_400)
    }

    /// `compute_richness`: `min(1, 0.1·facts + 0.2·dimensions + 0.01·accesses)`.
    public static func richness(_ node: GraphNode, factCount: Int, dimensionCount: Int) -> Double {
        min(1.0, 0.1 * Double(factCount) + 0.2 * Double(dimensionCount) + 0.01 * Double(node.accessCount))
    }
}

extension GraphFact {
    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        content = try row.decode("content", as: String.self)
        factType = try row.decode("fact_type", as: FactType.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

/// Parses `text[]` fact ids, skipping anything that is not a UUID.
func uuids(_ texts: [String]) -> [UUID] { texts.compactMap(UUID.init(uuidString:)) }

/// A source document that facts were extracted from (`raw_sources`); its id is
/// `uri_to_source_id(uri)`.
public struct GraphRawSource: Sendable, Hashable {
    /// `GraphKeys.sourceID(uri:)`.
    public var id: UUID
    /// Where it was fetched from.
    public var uri: String
    /// Its title.
    public var title: String?
    /// The fetched text, if kept.
    public var rawContent: String?
    /// SHA-256 of the content (unique in write-db).
    public var contentHash: String?
    /// MIME type.
    public var contentType: String?
    /// The search provider that found it.
    public var providerID: String?
    /// Whether `rawContent` is the full text.
    public var isFullText: Bool
    /// Canonical URL, if known.
    public var canonicalURL: String?
    /// DOI, if known.
    public var doi: String?
    /// Facts citing it (graph-db: maintained by the sync; write-db: as stored).
    public var factCount: Int
    /// Chunks a model refused (graph-db: maintained by the sync; write-db: as stored).
    public var prohibitedChunkCount: Int
    /// When it was fetched.
    public var retrievedAt: Date

    /// A source to store with ``WorkerGraphEngine/upsertRawSource(_:)``; the id follows from `uri`.
    public init(
        uri: String, title: String? = nil, rawContent: String? = nil, contentHash: String? = nil, contentType: String? = nil,
        providerID: String? = nil, isFullText: Bool = false, canonicalURL: String? = nil, doi: String? = nil
    ) {
        self.id = GraphKeys.sourceID(uri: uri)
        self.uri = uri
        self.title = title
        self.rawContent = rawContent
        self.contentHash = contentHash
        self.contentType = contentType
        self.providerID = providerID
        self.isFullText = isFullText
        self.canonicalURL = canonicalURL
        self.doi = doi
        self.factCount = 0
        self.prohibitedChunkCount = 0
        self.retrievedAt = Date()
    }

    static let columns = """
        id, uri, title, raw_content, content_hash, content_type, provider_id, is_full_text, canonical_url, doi, fact_count,
        prohibited_chunk_count, retrieved_at
        """

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        uri = try row.decode("uri", as: String.self)
        title = try row.decode("title", as: String?.self)
        rawContent = try row.decode("raw_content", as: String?.self)
        contentHash = try row.decode("content_hash", as: String?.self)
        contentType = try row.decode("content_type", as: String?.self)
        providerID = try row.decode("provider_id", as: String?.self)
        isFullText = try row.decode("is_full_text", as: Bool.self)
        canonicalURL = try row.decode("canonical_url", as: String?.self)
        doi = try row.decode("doi", as: String?.self)
        factCount = try row.decode("fact_count", as: Int.self)
        prohibitedChunkCount = try row.decode("prohibited_chunk_count", as: Int.self)
        retrievedAt = try row.decode("retrieved_at", as: Date.self)
    }
}

/// Where a fact was found: one (fact, raw source) pair with the citation's details.
public struct GraphFactSource: Sendable, Hashable {
    /// The row's id (deterministic for rows written by ``WorkerGraphEngine``).
    public var id: UUID
    /// The fact.
    public var factID: UUID
    /// The raw source.
    public var rawSourceID: UUID
    /// The source's URI.
    public var uri: String
    /// The source's title.
    public var title: String?
    /// The passage the fact came from.
    public var contextSnippet: String?
    /// How the source attributes it.
    public var attribution: String?
    /// Author (person).
    public var authorPerson: String?
    /// Author (organisation).
    public var authorOrg: String?
}

/// Facts with the sources they were found in.
public struct FactWithSources: Sendable, Hashable {
    /// The fact.
    public var fact: GraphFact
    /// Its sources, by URI.
    public var sources: [GraphFactSource]
}

/// How far the models' dimensions of a node agree.
public struct GraphConvergenceReport: Sendable, Hashable {
    /// The node.
    public var nodeID: UUID
    /// Agreement, 0...1.
    public var score: Double
    /// Claims the models agree on.
    public var convergedClaims: [String]
    /// Suggested consolidated text.
    public var recommendedContent: String?
    /// When it was computed.
    public var computedAt: Date
}

/// A saved snapshot of a node.
public struct GraphNodeVersion: Sendable, Hashable {
    /// The node.
    public var nodeID: UUID
    /// Version number (1, 2, ...).
    public var versionNumber: Int
    /// The snapshot as JSON text (concept, definition, attractor, filter id, max content
    /// tokens and counts).
    public var snapshot: String
    /// Nodes the version was built from.
    public var sourceNodeCount: Int
    /// Whether it is the node's default version.
    public var isDefault: Bool
    /// When it was saved.
    public var createdAt: Date

    init(row: PostgresRow, nodeID: UUID) throws(KTDBError) {
        self.nodeID = nodeID
        versionNumber = try row.decode("version_number", as: Int.self)
        snapshot = try row.decode("snapshot", as: String.self)
        sourceNodeCount = try row.decode("source_node_count", as: Int.self)
        isDefault = try row.decode("is_default", as: Bool.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

extension GraphFactSource {
    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        factID = try row.decode("fact_id", as: UUID.self)
        rawSourceID = try row.decode("raw_source_id", as: UUID.self)
        uri = try row.decode("uri", as: String.self)
        title = try row.decode("title", as: String?.self)
        contextSnippet = try row.decode("context_snippet", as: String?.self)
        attribution = try row.decode("attribution", as: String?.self)
        authorPerson = try row.decode("author_person", as: String?.self)
        authorOrg = try row.decode("author_org", as: String?.self)
    }
}

extension GraphConvergenceReport {
    init(row: PostgresRow, nodeID: UUID) throws(KTDBError) {
        self.nodeID = nodeID
        score = try row.decode("convergence_score", as: Double.self)
        convergedClaims = try row.decode("converged_claims", as: [String]?.self) ?? []
        recommendedContent = try row.decode("recommended_content", as: String?.self)
        computedAt = try row.decode("computed_at", as: Date.self)
    }
}

/// A node with a count (shared facts, similar facts).
public struct NodeWithCount: Sendable, Hashable {
    /// The node.
    public var node: GraphNode
    /// How many facts it shares with (or has similar to) the query.
    public var count: Int
}

extension NodeWithCount {
    /// The nodes of (id, count) pairs, in the pairs' order (ids without a node left out).
    static func pairing(_ counts: [(UUID, Int)], with nodes: [GraphNode]) -> [NodeWithCount] {
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return counts.compactMap { id, count in byID[id].map { NodeWithCount(node: $0, count: count) } }
    }
}

/// An edge as seen from one of its nodes, with the other node's concept and type.
public struct EdgeWithTarget: Sendable, Hashable {
    /// The edge.
    public var edge: GraphEdge
    /// The node at the other end.
    public var otherNodeID: UUID
    /// Its concept.
    public var otherConcept: String
    /// Its type.
    public var otherNodeType: NodeType
}

/// How a perspective's facts lean (`node_facts.stance`).
public struct PerspectiveSummary: Sendable, Hashable {
    /// Facts with stance `supports`.
    public var supporting = 0
    /// Facts with stance `challenges`.
    public var challenging = 0
    /// Facts with stance `neutral`.
    public var neutral = 0
    /// Facts with no or another stance.
    public var unclassified = 0

    /// A summary with these counts.
    public init(supporting: Int = 0, challenging: Int = 0, neutral: Int = 0, unclassified: Int = 0) {
        self.supporting = supporting
        self.challenging = challenging
        self.neutral = neutral
        self.unclassified = unclassified
    }
}

/// A node's neighbour with its concept and the edge that joins them.
public struct NeighborWithConcept: Sendable, Hashable {
    /// The neighbour.
    public var neighborID: UUID
    /// Its concept.
    public var concept: String
    /// The edge between the two nodes.
    public var edge: GraphEdge
}
