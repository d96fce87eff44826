public import KTDB

/// A kind the original system stored as free text: open, so that any stored value reads and
/// writes back unchanged, with the values the SDK itself uses as constants.
public protocol GraphKind: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible,
    PostgresEncodable, PostgresDecodable
where RawValue == String {
    init(rawValue: String)
}

extension GraphKind {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    /// `text`.
    public static var postgresTypeOID: UInt32 { String.postgresTypeOID }
    /// The raw value.
    public var postgresText: String { rawValue }
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) { self.init(rawValue: postgresText) }
}

/// A node's type (`node_type`, at most 20 characters in graph-db).
public struct NodeType: GraphKind {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// A concept (the default).
    public static let concept: NodeType = "concept"
    /// A named entity (see `entitySubtype`).
    public static let entity: NodeType = "entity"
    /// A perspective on a concept.
    public static let perspective: NodeType = "perspective"
    /// An event.
    public static let event: NodeType = "event"
}

/// A fact's type (`fact_type`).
public struct FactType: GraphKind {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// A claim (the default).
    public static let claim: FactType = "claim"
}

/// An edge's relationship (`relationship_type`, at most 50 characters in graph-db).
public struct RelationshipType: GraphKind {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// An undirected relation (the default).
    public static let related: RelationshipType = "related"
}
