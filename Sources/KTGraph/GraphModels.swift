public import Foundation
import KTDB

/// A node as either engine returns it. Worker reads fill it from write-db (counts are 0 there:
/// the sync maintains them in graph-db); read-engine reads from graph-db.
public struct GraphNode: Sendable, Hashable {
    /// `key_to_uuid(key)`.
    public var id: UUID
    /// The write-db key (`slug(concept)`).
    public var key: String
    /// The concept text.
    public var concept: String
    /// `concept`, `entity`, `perspective`, ...
    public var nodeType: String
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
    public var relationshipType: String
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
    public var factType: String
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
        factType = try row.decode("fact_type", as: String.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

/// Parses `text[]` fact ids, skipping anything that is not a UUID.
func uuids(_ texts: [String]) -> [UUID] { texts.compactMap(UUID.init(uuidString:)) }
