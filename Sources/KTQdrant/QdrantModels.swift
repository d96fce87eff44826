public import Foundation

/// A point to upsert: a UUID id, a dense vector and a JSON payload.
public struct QdrantPoint: Sendable, Hashable, Encodable {
    /// The point id (Qdrant point ids are UUID strings here).
    public var id: UUID
    /// The dense vector.
    public var vector: [Float]
    /// The payload.
    public var payload: [String: JSONValue]

    /// Creates a point.
    public init(id: UUID, vector: [Float], payload: [String: JSONValue] = [:]) {
        self.id = id
        self.vector = vector
        self.payload = payload
    }

    /// Creates a point with a typed payload.
    public init(id: UUID, vector: [Float], payload: some QdrantPayload) throws {
        self.init(id: id, vector: vector, payload: try payload.jsonObject())
    }

    private enum CodingKeys: String, CodingKey { case id, vector, payload }

    /// Encodes as Qdrant's `PointStruct`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(vector, forKey: .vector)
        try container.encode(payload, forKey: .payload)
    }
}

/// A point returned by a query (`ScoredPoint`) or a retrieve/scroll (`Record`, score absent).
public struct QdrantScoredPoint: Sendable, Hashable, Decodable {
    /// The point id.
    public var id: String
    /// The similarity score (0 for retrieve and scroll).
    public var score: Double
    /// The payload, when requested.
    public var payload: [String: JSONValue]?
    /// The dense vector, when requested.
    public var vector: [Float]?

    private enum CodingKeys: String, CodingKey { case id, score, payload, vector }

    /// Decodes a `ScoredPoint` or a `Record`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try? container.decode(String.self, forKey: .id) {
            id = text
        } else {
            id = String(try container.decode(Int.self, forKey: .id))
        }
        score = try container.decodeIfPresent(Double.self, forKey: .score) ?? 0
        payload = try container.decodeIfPresent([String: JSONValue].self, forKey: .payload)
        vector = try? container.decodeIfPresent([Float].self, forKey: .vector)
    }

    /// The id as a UUID, if it is one.
    public var uuid: UUID? { UUID(uuidString: id) }

    /// Decodes the payload as a typed payload.
    public func decodePayload<P: QdrantPayload>(_ type: P.Type = P.self) throws -> P {
        try P(jsonObject: payload ?? [:])
    }
}

/// Vector distance.
public struct QdrantDistance: Sendable, Hashable, Codable {
    /// Qdrant's name for it.
    public let rawValue: String
    private init(_ rawValue: String) { self.rawValue = rawValue }
    /// Cosine similarity (the system's choice).
    public static let cosine = QdrantDistance("Cosine")
    /// Dot product.
    public static let dot = QdrantDistance("Dot")
    /// Euclidean distance.
    public static let euclid = QdrantDistance("Euclid")

    /// Decodes the name.
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    /// Encodes the name.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// int8 scalar quantization (`{"scalar": {"type": "int8", "quantile": …, "always_ram": …}}`).
public struct QdrantScalarQuantization: Sendable, Hashable, Codable {
    /// Quantile for the value range; `nil` uses Qdrant's default.
    public var quantile: Double?
    /// Keep quantized vectors in RAM.
    public var alwaysRAM: Bool

    /// Creates an int8 quantization setting.
    public init(quantile: Double? = nil, alwaysRAM: Bool = true) {
        self.quantile = quantile
        self.alwaysRAM = alwaysRAM
    }

    private struct Scalar: Codable {
        var type: String
        var quantile: Double?
        var always_ram: Bool?
    }
    private enum CodingKeys: String, CodingKey { case scalar }

    /// Encodes as Qdrant's `ScalarQuantization`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Scalar(type: "int8", quantile: quantile, always_ram: alwaysRAM), forKey: .scalar)
    }

    /// Decodes Qdrant's `ScalarQuantization`.
    public init(from decoder: any Decoder) throws {
        let scalar = try decoder.container(keyedBy: CodingKeys.self).decode(Scalar.self, forKey: .scalar)
        self.init(quantile: scalar.quantile, alwaysRAM: scalar.always_ram ?? false)
    }
}

/// What the SDK reads of a collection's info.
public struct QdrantCollectionInfo: Sendable, Hashable {
    /// `green`, `yellow`, `grey` or `red`.
    public var status: String
    /// Number of points, if reported.
    public var pointsCount: Int?
    /// The dense vector size.
    public var vectorSize: Int?
    /// The distance.
    public var distance: QdrantDistance?
    /// The collection-level quantization, if any.
    public var quantization: QdrantScalarQuantization?
    /// Indexed payload fields and their types.
    public var payloadSchema: [String: String]
}

/// A payload filter (`must`, `must_not`, `should`).
public struct QdrantFilter: Sendable, Hashable, Encodable {
    /// All of these must hold.
    public var must: [QdrantCondition]
    /// None of these may hold.
    public var mustNot: [QdrantCondition]
    /// At least one of these must hold (when not empty).
    public var should: [QdrantCondition]

    /// Creates a filter.
    public init(must: [QdrantCondition] = [], mustNot: [QdrantCondition] = [], should: [QdrantCondition] = []) {
        self.must = must
        self.mustNot = mustNot
        self.should = should
    }

    private enum CodingKeys: String, CodingKey { case must, mustNot = "must_not", should }

    /// Encodes as Qdrant's `Filter`, leaving out empty clauses.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !must.isEmpty { try container.encode(must, forKey: .must) }
        if !mustNot.isEmpty { try container.encode(mustNot, forKey: .mustNot) }
        if !should.isEmpty { try container.encode(should, forKey: .should) }
    }
}

/// One filter condition.
public struct QdrantCondition: Sendable, Hashable, Encodable {
    private enum Kind: Hashable, Sendable {
        case matchValue(String, JSONValue)
        case matchAny(String, [JSONValue])
        case matchText(String, String)
        case hasID([UUID])
        case nested(QdrantFilter)
    }
    private let kind: Kind

    /// `key` equals `value` (`match.value`).
    public static func match(_ key: String, _ value: JSONValue) -> QdrantCondition { .init(kind: .matchValue(key, value)) }
    /// `key` equals any of `values` (`match.any`); for an array field, any element matches.
    public static func matchAny(_ key: String, _ values: [JSONValue]) -> QdrantCondition { .init(kind: .matchAny(key, values)) }
    /// Full-text match on a field with a text index (`match.text`).
    public static func matchText(_ key: String, _ text: String) -> QdrantCondition { .init(kind: .matchText(key, text)) }
    /// The point id is one of `ids` (`has_id`).
    public static func hasID(_ ids: [UUID]) -> QdrantCondition { .init(kind: .hasID(ids)) }
    /// A nested filter.
    public static func filter(_ filter: QdrantFilter) -> QdrantCondition { .init(kind: .nested(filter)) }

    private struct Field<M: Encodable>: Encodable {
        var key: String
        var match: M
    }
    private struct Value: Encodable { var value: JSONValue }
    private struct AnyOf: Encodable { var any: [JSONValue] }
    private struct Text: Encodable { var text: String }
    private struct HasID: Encodable { var has_id: [String] }

    /// Encodes as Qdrant's `FieldCondition`, `HasIdCondition` or nested `Filter`.
    public func encode(to encoder: any Encoder) throws {
        switch kind {
        case .matchValue(let key, let value): try Field(key: key, match: Value(value: value)).encode(to: encoder)
        case .matchAny(let key, let values): try Field(key: key, match: AnyOf(any: values)).encode(to: encoder)
        case .matchText(let key, let text): try Field(key: key, match: Text(text: text)).encode(to: encoder)
        case .hasID(let ids): try HasID(has_id: ids.map { $0.uuidString.lowercased() }).encode(to: encoder)
        case .nested(let filter): try filter.encode(to: encoder)
        }
    }
}

/// A nearest-neighbour query on `/points/query`.
public struct QdrantQuery: Sendable, Hashable {
    /// The query vector.
    public var vector: [Float]
    /// Maximum number of results.
    public var limit: Int
    /// Minimum score of a result.
    public var scoreThreshold: Double?
    /// Payload filter.
    public var filter: QdrantFilter?
    /// Return payloads.
    public var withPayload: Bool
    /// Return vectors.
    public var withVector: Bool
    /// Re-score quantized candidates with the original vectors (`params.quantization.rescore`).
    public var rescore: Bool?

    /// Creates a query.
    public init(
        vector: [Float], limit: Int = 10, scoreThreshold: Double? = nil, filter: QdrantFilter? = nil,
        withPayload: Bool = true, withVector: Bool = false, rescore: Bool? = nil
    ) {
        self.vector = vector
        self.limit = limit
        self.scoreThreshold = scoreThreshold
        self.filter = filter
        self.withPayload = withPayload
        self.withVector = withVector
        self.rescore = rescore
    }
}

/// One branch of a hybrid query: candidates found by a vector, optionally filtered.
public struct QdrantPrefetch: Sendable, Hashable {
    /// The branch's query vector.
    public var vector: [Float]
    /// The branch's filter.
    public var filter: QdrantFilter?
    /// Candidates this branch contributes.
    public var limit: Int

    /// Creates a branch.
    public init(vector: [Float], filter: QdrantFilter? = nil, limit: Int = 50) {
        self.vector = vector
        self.filter = filter
        self.limit = limit
    }
}
