public import Foundation

extension QdrantClient {
    private struct PointsList: Encodable { var points: [QdrantPoint] }
    private struct QueryBody: Encodable {
        struct Params: Encodable {
            struct Quantization: Encodable { var rescore: Bool }
            var quantization: Quantization
        }
        struct Prefetch: Encodable {
            var query: [Float]
            var filter: QdrantFilter?
            var limit: Int
        }
        struct Fusion: Encodable { var fusion = "rrf" }
        var query: JSONQuery
        var prefetch: [Prefetch]?
        var filter: QdrantFilter?
        var limit: Int
        var score_threshold: Double?
        var with_payload: Bool
        var with_vector: Bool
        var params: Params?
    }
    /// `query` is either a dense vector or `{"fusion": "rrf"}`.
    private enum JSONQuery: Encodable {
        case vector([Float])
        case fusion(QueryBody.Fusion)
        func encode(to encoder: any Encoder) throws {
            switch self {
            case .vector(let vector): try vector.encode(to: encoder)
            case .fusion(let fusion): try fusion.encode(to: encoder)
            }
        }
    }
    private struct QueryResult: Decodable { var points: [QdrantScoredPoint] }
    private struct PointRequest: Encodable {
        var ids: [String]
        var with_payload: Bool
        var with_vector: Bool
    }
    private struct IDSelector: Encodable { var points: [String] }
    private struct FilterSelector: Encodable { var filter: QdrantFilter }
    private struct SetPayloadBody: Encodable {
        var payload: [String: JSONValue]
        var points: [String]
    }
    private struct CountBody: Encodable {
        var filter: QdrantFilter?
        var exact: Bool
    }
    private struct CountResult: Decodable { var count: Int }
    private struct ScrollBody: Encodable {
        var filter: QdrantFilter?
        var limit: Int
        var offset: String?
        var with_payload: Bool
        var with_vector: Bool
    }
    private struct ScrollResult: Decodable {
        var points: [QdrantScoredPoint]
        var next_page_offset: JSONValue?
    }

    private static func points(_ collection: String, _ suffix: String = "") -> String {
        "/collections/\(segment(collection))/points\(suffix)"
    }
    /// `wait=true`: writes return once applied.
    private static let wait = [URLQueryItem(name: "wait", value: "true")]

    /// Upserts points in one request and waits until they are applied (`wait=true`).
    public func upsert(_ collection: String, points: [QdrantPoint]) async throws {
        guard !points.isEmpty else { return }
        _ = try await send(
            "PUT", Self.points(collection), query: Self.wait, body: PointsList(points: points), idempotent: true,
            collection: collection, as: UpdateResult.self)
    }

    /// Upserts points in requests of at most `chunkSize` (default 200), one after another.
    public func upsertChunked(_ collection: String, points: [QdrantPoint], chunkSize: Int = 200) async throws {
        guard chunkSize > 0 else { throw KTQdrantError(code: .invalidArgument, message: "chunk size must be positive") }
        var start = 0
        while start < points.count {
            let end = min(start + chunkSize, points.count)
            try await upsert(collection, points: Array(points[start..<end]))
            start = end
        }
    }

    /// Nearest neighbours of a vector (`POST /points/query`).
    public func query(_ collection: String, _ query: QdrantQuery) async throws -> [QdrantScoredPoint] {
        let body = QueryBody(
            query: .vector(query.vector), prefetch: nil, filter: query.filter, limit: query.limit,
            score_threshold: query.scoreThreshold, with_payload: query.withPayload, with_vector: query.withVector,
            params: query.rescore.map { .init(quantization: .init(rescore: $0)) })
        return try await send("POST", Self.points(collection, "/query"), body: body, idempotent: true, collection: collection, as: QueryResult.self).points
    }

    /// A hybrid query: each branch finds candidates, and the lists are fused by reciprocal rank fusion (RRF).
    public func hybridQuery(
        _ collection: String, prefetch: [QdrantPrefetch], filter: QdrantFilter? = nil, limit: Int = 10, withPayload: Bool = true
    ) async throws -> [QdrantScoredPoint] {
        guard !prefetch.isEmpty else { throw KTQdrantError(code: .invalidArgument, message: "a hybrid query needs at least one prefetch") }
        let body = QueryBody(
            query: .fusion(.init()), prefetch: prefetch.map { .init(query: $0.vector, filter: $0.filter, limit: $0.limit) },
            filter: filter, limit: limit, score_threshold: nil, with_payload: withPayload, with_vector: false, params: nil)
        return try await send("POST", Self.points(collection, "/query"), body: body, idempotent: true, collection: collection, as: QueryResult.self).points
    }

    /// Points by id (missing ids are skipped).
    public func retrieve(_ collection: String, ids: [UUID], withPayload: Bool = true, withVectors: Bool = false) async throws -> [QdrantScoredPoint] {
        let body = PointRequest(ids: ids.map { $0.uuidString.lowercased() }, with_payload: withPayload, with_vector: withVectors)
        return try await send("POST", Self.points(collection), body: body, idempotent: true, collection: collection, as: [QdrantScoredPoint].self)
    }

    /// Deletes points by id.
    public func delete(_ collection: String, ids: [UUID]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await send(
            "POST", Self.points(collection, "/delete"), query: Self.wait, body: IDSelector(points: ids.map { $0.uuidString.lowercased() }),
            idempotent: true, collection: collection, as: UpdateResult.self)
    }

    /// Deletes the points a filter selects.
    public func delete(_ collection: String, filter: QdrantFilter) async throws {
        _ = try await send(
            "POST", Self.points(collection, "/delete"), query: Self.wait, body: FilterSelector(filter: filter),
            idempotent: true, collection: collection, as: UpdateResult.self)
    }

    /// Sets payload keys on points (other keys are kept).
    public func setPayload(_ collection: String, payload: [String: JSONValue], ids: [UUID]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await send(
            "POST", Self.points(collection, "/payload"), query: Self.wait,
            body: SetPayloadBody(payload: payload, points: ids.map { $0.uuidString.lowercased() }),
            idempotent: true, collection: collection, as: UpdateResult.self)
    }

    /// The number of points, optionally filtered.
    public func count(_ collection: String, filter: QdrantFilter? = nil, exact: Bool = true) async throws -> Int {
        try await send(
            "POST", Self.points(collection, "/count"), body: CountBody(filter: filter, exact: exact), idempotent: true,
            collection: collection, as: CountResult.self
        ).count
    }

    /// One page of points in id order, and the offset of the next page (`nil` at the end).
    public func scroll(
        _ collection: String, filter: QdrantFilter? = nil, limit: Int = 100, offset: String? = nil, withPayload: Bool = true, withVectors: Bool = false
    ) async throws -> (points: [QdrantScoredPoint], nextOffset: String?) {
        let body = ScrollBody(filter: filter, limit: limit, offset: offset, with_payload: withPayload, with_vector: withVectors)
        let result = try await send("POST", Self.points(collection, "/scroll"), body: body, idempotent: true, collection: collection, as: ScrollResult.self)
        let next: String? =
            switch result.next_page_offset {
            case .string(let text): text
            case .int(let number): String(number)
            default: nil
            }
        return (result.points, next)
    }
}
