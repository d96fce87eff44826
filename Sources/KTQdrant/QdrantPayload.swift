import Foundation

/// A payload type the system knows; encoded to and decoded from a JSON object.
public protocol QdrantPayload: Codable, Sendable {}

extension QdrantPayload {
    /// The payload as a JSON object.
    public func jsonObject() throws -> [String: JSONValue] {
        let data = try JSONEncoder().encode(self)
        return try JSONDecoder().decode([String: JSONValue].self, from: data)
    }

    /// Decodes the payload from a JSON object.
    public init(jsonObject: [String: JSONValue]) throws {
        self = try JSONDecoder().decode(Self.self, from: try JSONEncoder().encode(jsonObject))
    }
}

/// The payload of a point in a `facts` collection.
public struct FactPayload: QdrantPayload, Hashable {
    /// The fact's type (`claim`, `definition`, ...).
    public var factType: String
    /// Ids of the nodes the fact is linked to; kept in step with the node→fact links.
    public var nodeIDs: [String]
    /// The fact's text (full-text indexed).
    public var content: String

    /// Creates a fact payload.
    public init(factType: String, nodeIDs: [String], content: String) {
        self.factType = factType
        self.nodeIDs = nodeIDs
        self.content = content
    }

    private enum CodingKeys: String, CodingKey { case factType = "fact_type", nodeIDs = "node_ids", content }
}

/// The payload of a point in a `nodes` collection.
public struct NodePayload: QdrantPayload, Hashable {
    /// The node type (`concept`, `entity`, ...).
    public var nodeType: String
    /// The node's concept text.
    public var concept: String

    /// Creates a node payload.
    public init(nodeType: String, concept: String) {
        self.nodeType = nodeType
        self.concept = concept
    }

    private enum CodingKeys: String, CodingKey { case nodeType = "node_type", concept }
}

/// The payload of a point in a `seeds` collection.
public struct SeedPayload: QdrantPayload, Hashable {
    /// The seed's deterministic key.
    public var seedKey: String
    /// The seed's name.
    public var name: String
    /// The node type the seed would become.
    public var nodeType: String
    /// Context text the embedding was made from.
    public var contextText: String?

    /// Creates a seed payload.
    public init(seedKey: String, name: String, nodeType: String, contextText: String? = nil) {
        self.seedKey = seedKey
        self.name = name
        self.nodeType = nodeType
        self.contextText = contextText
    }

    private enum CodingKeys: String, CodingKey { case seedKey = "seed_key", name, nodeType = "node_type", contextText = "context_text" }
}
