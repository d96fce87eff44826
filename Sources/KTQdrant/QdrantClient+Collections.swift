import Foundation

extension QdrantClient {
    private struct ExistsResult: Decodable { var exists: Bool }
    private struct CollectionsResult: Decodable {
        struct Item: Decodable { var name: String }
        var collections: [Item]
    }
    private struct VectorParams: Codable {
        var size: Int
        var distance: QdrantDistance
    }
    private struct CreateCollection: Encodable {
        var vectors: VectorParams
        var quantization_config: QdrantScalarQuantization?
    }
    private struct UpdateCollection: Encodable {
        var quantization_config: QdrantScalarQuantization
    }
    private struct InfoResult: Decodable {
        struct Config: Decodable {
            struct Params: Decodable { var vectors: VectorParams? }
            var params: Params?
            var quantization_config: QdrantScalarQuantization?
        }
        struct FieldSchema: Decodable { var data_type: String? }
        var status: String
        var points_count: Int?
        var config: Config?
        var payload_schema: [String: FieldSchema]?
    }
    private struct FieldIndex: Encodable {
        struct TextSchema: Encodable {
            var type = "text"
            var tokenizer = "word"
            var lowercase = true
        }
        var field_name: String
        var field_schema: JSONValue
    }
    struct UpdateResult: Decodable {
        var operation_id: Int?
        var status: String
    }

    private static func path(_ collection: String, _ suffix: String = "") -> String {
        "/collections/\(segment(collection))\(suffix)"
    }

    /// Whether the collection exists.
    public func collectionExists(_ name: String) async throws -> Bool {
        try await send("GET", Self.path(name, "/exists"), idempotent: true, collection: name, as: ExistsResult.self).exists
    }

    /// The names of all collections.
    public func listCollections() async throws -> [String] {
        try await send("GET", "/collections", idempotent: true, as: CollectionsResult.self).collections.map(\.name)
    }

    /// The collection's status, size, vector parameters, quantization and payload indexes.
    ///
    /// - Throws: ``KTQdrantError`` with HTTP status 404 when it does not exist.
    public func collectionInfo(_ name: String) async throws -> QdrantCollectionInfo {
        let info = try await send("GET", Self.path(name), idempotent: true, collection: name, as: InfoResult.self)
        return QdrantCollectionInfo(
            status: info.status,
            pointsCount: info.points_count,
            vectorSize: info.config?.params?.vectors?.size,
            distance: info.config?.params?.vectors?.distance,
            quantization: info.config?.quantization_config,
            payloadSchema: (info.payload_schema ?? [:]).compactMapValues(\.data_type))
    }

    /// Creates a collection of dense vectors.
    ///
    /// - Throws: ``KTQdrantError`` with HTTP status 409 when it already exists (see ``ensureCollection(_:vectorSize:distance:quantization:)``).
    public func createCollection(_ name: String, vectorSize: Int, distance: QdrantDistance = .cosine, quantization: QdrantScalarQuantization? = nil) async throws {
        guard vectorSize > 0 else { throw KTQdrantError(code: .invalidArgument, message: "vector size must be positive") }
        let body = CreateCollection(vectors: VectorParams(size: vectorSize, distance: distance), quantization_config: quantization)
        _ = try await send("PUT", Self.path(name), body: body, idempotent: false, collection: name, as: Bool.self)
    }

    /// Creates the collection unless it exists; returns whether it created it. Safe to run
    /// concurrently: losing a creation race counts as "exists".
    @discardableResult
    public func ensureCollection(_ name: String, vectorSize: Int, distance: QdrantDistance = .cosine, quantization: QdrantScalarQuantization? = nil) async throws -> Bool {
        if try await collectionExists(name) { return false }
        do {
            try await createCollection(name, vectorSize: vectorSize, distance: distance, quantization: quantization)
            return true
        } catch let error as KTQdrantError where error.httpStatus == 409 {
            return false
        }
    }

    /// Adds (or replaces) int8 scalar quantization on an existing collection.
    public func updateCollection(_ name: String, quantization: QdrantScalarQuantization) async throws {
        _ = try await send("PATCH", Self.path(name), body: UpdateCollection(quantization_config: quantization), idempotent: true, collection: name, as: Bool.self)
    }

    /// Deletes a collection; returns whether it existed.
    @discardableResult
    public func deleteCollection(_ name: String) async throws -> Bool {
        try await send("DELETE", Self.path(name), idempotent: true, collection: name, as: Bool.self)
    }

    /// Creates a full-text payload index (word tokenizer, lower-cased) on `field`.
    public func createFullTextIndex(_ collection: String, field: String) async throws {
        let schema: JSONValue = ["type": "text", "tokenizer": "word", "lowercase": true]
        _ = try await send(
            "PUT", Self.path(collection, "/index"), query: [.init(name: "wait", value: "true")],
            body: FieldIndex(field_name: field, field_schema: schema), idempotent: true, collection: collection, as: UpdateResult.self)
    }

    /// Creates a keyword payload index on `field` (for exact and `any` matches).
    public func createKeywordIndex(_ collection: String, field: String) async throws {
        _ = try await send(
            "PUT", Self.path(collection, "/index"), query: [.init(name: "wait", value: "true")],
            body: FieldIndex(field_name: field, field_schema: "keyword"), idempotent: true, collection: collection, as: UpdateResult.self)
    }
}
