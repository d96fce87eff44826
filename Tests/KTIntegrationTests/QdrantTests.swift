import Foundation
import KTConfig
import KTCore
import Logging
import Testing

@testable import KTQdrant

@Suite("Qdrant client (local Qdrant-compatible server)", .enabled(if: TestEnvironment.isEnabled))
struct QdrantTests {
    let logger = TestEnvironment.logger

    func client(_ url: String? = nil, apiKey: String? = nil, retry: QdrantClient.RetryPolicy = .default, transport: QdrantClient.Transport = .curl) throws -> QdrantClient {
        try QdrantClient(
            configuration: .init(
                url: url ?? TestEnvironment.variables["KT_TEST_QDRANT_URL"] ?? "", apiKey: apiKey.map(Secret.init), timeout: .seconds(20),
                retry: retry, transport: transport),
            logger: logger)
    }

    @Test("both transports speak the same protocol", arguments: [QdrantClient.Transport.curl, .urlSession])
    func transports(transport: QdrantClient.Transport) async throws {
        let client = try client(transport: transport)
        defer { client.close() }
        try await withCollection(client) { name in
            let id = UUID()
            try await client.upsert(name, points: [QdrantPoint(id: id, vector: vector(3), payload: ["content": "über"])])
            let found = try await client.query(name, QdrantQuery(vector: vector(3), limit: 1))
            #expect(found.first?.uuid == id)
            #expect(found.first?.payload?["content"] == "über")
            do {
                _ = try await client.collectionInfo(name + "_missing")
                Issue.record("expected 404")
            } catch let error as KTQdrantError {
                #expect(error.httpStatus == 404)
            }
        }
    }

    /// A deterministic unit vector of 8 dimensions pointing mostly along `axis`.
    func vector(_ axis: Int, _ noise: Float = 0) -> [Float] {
        (0..<8).map { $0 == axis ? 1 : noise * Float($0 + 1) }
    }

    func withCollection<T: Sendable>(_ client: QdrantClient, quantization: QdrantScalarQuantization? = nil, _ body: (String) async throws -> T) async throws -> T {
        let name = TestEnvironment.uniqueName("t")
        try await client.createCollection(name, vectorSize: 8, quantization: quantization)
        do {
            let value = try await body(name)
            try await client.deleteCollection(name)
            return value
        } catch {
            _ = try? await client.deleteCollection(name)
            throw error
        }
    }

    @Test("collections: create, exists, info, list, quantization update, ensure (idempotent, concurrent), delete")
    func collections() async throws {
        let client = try client()
        defer { client.close() }
        let name = TestEnvironment.uniqueName("coll")
        #expect(try await client.collectionExists(name) == false)
        try await client.createCollection(name, vectorSize: 8)
        #expect(try await client.collectionExists(name))
        #expect(try await client.listCollections().contains(name))
        var info = try await client.collectionInfo(name)
        #expect(info.vectorSize == 8)
        #expect(info.distance == .cosine)
        #expect(info.quantization == nil)
        try await client.updateCollection(name, quantization: QdrantScalarQuantization(alwaysRAM: true))
        info = try await client.collectionInfo(name)
        #expect(info.quantization == QdrantScalarQuantization(alwaysRAM: true))
        do {
            try await client.createCollection(name, vectorSize: 8)
            Issue.record("expected a conflict")
        } catch let error as KTQdrantError {
            #expect(error.httpStatus == 409)
        }
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            let other = name + "_e"
            for _ in 0..<4 { group.addTask { try await client.ensureCollection(other, vectorSize: 8) } }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(created.filter { $0 }.count == 1)
        #expect(try await client.deleteCollection(name + "_e"))
        #expect(try await client.deleteCollection(name))
        #expect(try await client.deleteCollection(name) == false)
        do {
            _ = try await client.collectionInfo(name)
            Issue.record("expected 404")
        } catch let error as KTQdrantError {
            #expect(error.httpStatus == 404)
            #expect(error.message.contains("doesn't exist"))
        }
    }

    @Test("points: upsert (single and chunked), count, retrieve with vectors, set_payload, delete by ids and by filter, scroll")
    func points() async throws {
        let client = try client()
        defer { client.close() }
        try await withCollection(client) { name in
            let ids = (0..<450).map { _ in UUID() }
            let points = try ids.enumerated().map { index, id in
                try QdrantPoint(
                    id: id, vector: vector(index % 8, 0.01), payload: FactPayload(factType: index % 2 == 0 ? "claim" : "definition", nodeIDs: ["n\(index % 5)"], content: "fact number \(index)"))
            }
            try await client.upsert(name, points: [points[0]])
            try await client.upsertChunked(name, points: points, chunkSize: 200)
            #expect(try await client.count(name) == 450)
            #expect(try await client.count(name, filter: QdrantFilter(must: [.match("fact_type", "claim")])) == 225)

            let fetched = try await client.retrieve(name, ids: [ids[3], UUID()], withVectors: true)
            #expect(fetched.count == 1)
            #expect(fetched.first?.uuid == ids[3])
            #expect(fetched.first?.vector?.count == 8)
            #expect(try fetched.first?.decodePayload(FactPayload.self).content == "fact number 3")

            try await client.setPayload(name, payload: ["node_ids": ["n1", "n9"]], ids: [ids[3]])
            let updated = try await client.retrieve(name, ids: [ids[3]])
            #expect(try updated.first?.decodePayload(FactPayload.self).nodeIDs == ["n1", "n9"])
            #expect(updated.first?.payload?["content"] == "fact number 3")

            try await client.delete(name, ids: Array(ids[0..<10]))
            #expect(try await client.count(name) == 440)
            try await client.delete(name, filter: QdrantFilter(must: [.match("fact_type", "definition")]))
            #expect(try await client.count(name) == 220)

            var seen = Set<String>()
            var offset: String?
            repeat {
                let page = try await client.scroll(name, limit: 100, offset: offset)
                seen.formUnion(page.points.map(\.id))
                offset = page.nextOffset
            } while offset != nil
            #expect(seen.count == 220)
        }
    }

    @Test("query: limit, score threshold, filters (must, must_not, should, any, has_id), payloads, rescore; hybrid RRF")
    func query() async throws {
        let client = try client()
        defer { client.close() }
        try await withCollection(client, quantization: QdrantScalarQuantization()) { name in
            let ids = (0..<16).map { _ in UUID() }
            try await client.upsert(
                name,
                points: ids.enumerated().map { index, id in
                    QdrantPoint(
                        id: id, vector: vector(index % 8, 0.05 * Float(index / 8)),
                        payload: [
                            "fact_type": .string(index < 8 ? "claim" : "definition"), "node_ids": .array([.string("n\(index % 4)")]), "content": .string("c\(index)"),
                        ])
                })
            let nearest = try await client.query(name, QdrantQuery(vector: vector(2), limit: 3, rescore: true))
            #expect(nearest.count == 3)
            #expect(nearest.first?.uuid == ids[2])
            #expect(nearest.first?.payload?["content"] == "c2")
            #expect(nearest[0].score >= nearest[1].score)

            let threshold = try await client.query(name, QdrantQuery(vector: vector(2), limit: 10, scoreThreshold: 0.9))
            #expect(threshold.allSatisfy { $0.score >= 0.9 })
            #expect(!threshold.isEmpty)

            let filtered = try await client.query(
                name,
                QdrantQuery(
                    vector: vector(2), limit: 16,
                    filter: QdrantFilter(
                        must: [.match("fact_type", "definition")], mustNot: [.hasID([ids[10]])], should: [.matchAny("node_ids", ["n2", "n3"])])))
            #expect(Set(filtered.compactMap(\.uuid)) == Set([ids[11], ids[14], ids[15]]))

            let withoutPayload = try await client.query(name, QdrantQuery(vector: vector(0), limit: 1, withPayload: false, withVector: true))
            #expect(withoutPayload.first?.payload == nil)
            #expect(withoutPayload.first?.vector?.count == 8)

            let hybrid = try await client.hybridQuery(
                name,
                prefetch: [
                    QdrantPrefetch(vector: vector(1), limit: 4),
                    QdrantPrefetch(vector: vector(5), filter: QdrantFilter(must: [.match("fact_type", "claim")]), limit: 4),
                ], limit: 4)
            #expect(hybrid.count == 4)
            let top = Set(hybrid.prefix(2).compactMap(\.uuid))
            #expect(top == Set([ids[1], ids[5]]))
        }
    }

    @Test("full-text payload index shows up in the collection's payload schema")
    func fullTextIndex() async throws {
        let client = try client()
        defer { client.close() }
        try await withCollection(client) { name in
            try await client.createFullTextIndex(name, field: "content")
            try await client.createKeywordIndex(name, field: "fact_type")
            let schema = try await client.collectionInfo(name).payloadSchema
            #expect(schema["content"] == "text")
            #expect(schema["fact_type"] == "keyword")
        }
    }

    @Test("a graph's collections: facts with int8 quantization and a text index, nodes, seeds; on the external server only")
    func graphCollections() async throws {
        let external = try client(TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"])
        let system = try client()
        defer { external.close(); system.close() }
        let collections = QdrantCollections(graphSlug: TestEnvironment.uniqueName("g"))
        #expect(try await external.ensureGraphCollections(collections, vectorSize: 8).count == 3)
        #expect(try await external.ensureGraphCollections(collections, vectorSize: 8).isEmpty)
        let facts = try await external.collectionInfo(collections.facts)
        #expect(facts.quantization != nil)
        #expect(facts.payloadSchema["content"] == "text")
        for name in collections.all {
            #expect(try await external.collectionExists(name))
            #expect(try await system.collectionExists(name) == false)
            try await external.deleteCollection(name)
        }
    }

    @Test("ensure adds int8 quantization to an existing facts collection that lacks it (issue 17, item 18)")
    func quantizationAddedToExistingFacts() async throws {
        let qdrant = try client()
        defer { qdrant.close() }
        let collections = QdrantCollections(graphSlug: TestEnvironment.uniqueName("q"))
        try await qdrant.createCollection(collections.facts, vectorSize: 8)
        #expect(try await qdrant.collectionInfo(collections.facts).quantization == nil)
        #expect(try await qdrant.ensureGraphCollections(collections, vectorSize: 8) == [collections.nodes, collections.seeds])
        #expect(try await qdrant.collectionInfo(collections.facts).quantization != nil)
        for name in collections.all { try await qdrant.deleteCollection(name) }
    }

    @Test("the server rejects a body that does not match Qdrant's OpenAPI schema (so passing tests prove conforming bodies)")
    func serverValidatesBodies() async throws {
        let client = try client()
        defer { client.close() }
        try await withCollection(client) { name in
            struct Wrong: Encodable { var limit = "ten"; var query = [Float](repeating: 0.1, count: 8) }
            do {
                _ = try await client.send("POST", "/collections/\(name)/points/query", body: Wrong(), idempotent: true, as: JSONValue.self)
                Issue.record("expected a 400")
            } catch let error as KTQdrantError {
                #expect(error.httpStatus == 400)
                #expect(error.message.contains("QueryRequest"))
            }
        }
    }

    @Test("api-key: missing or wrong key → 401, not retried, key never in the error; right key works")
    func apiKey() async throws {
        let server = try QdrantLocalServer(apiKey: "s3cret-key-42")
        try await server.start()
        defer { server.stop() }
        let anonymous = try client(server.url)
        let wrong = try client(server.url, apiKey: "wrong-key-77")
        let right = try client(server.url, apiKey: "s3cret-key-42")
        defer { anonymous.close(); wrong.close(); right.close() }
        for candidate in [anonymous, wrong] {
            do {
                _ = try await candidate.listCollections()
                Issue.record("expected 401")
            } catch let error as KTQdrantError {
                #expect(error.httpStatus == 401)
                #expect(!error.debugDescription.contains("s3cret-key-42"))
                #expect(!error.debugDescription.contains("wrong-key-77"))
            }
        }
        #expect(try await right.listCollections().isEmpty)
    }

    @Test("retries: a call made while the server is down succeeds once it is back")
    func retries() async throws {
        let server = try QdrantLocalServer()
        try await server.start()
        // Retries for as long as the server may take to start again (`start` waits up to 120 s):
        // the restart is slow on a loaded machine, and the test is about retrying until it is back.
        let client = try client(server.url, retry: .init(maxAttempts: 1_500, baseDelay: .milliseconds(50), maxDelay: .milliseconds(100)))
        defer { client.close(); server.stop() }
        try await client.createCollection("kept", vectorSize: 8)
        server.stop()
        async let exists = client.collectionExists("kept")
        try await Task.sleep(for: .milliseconds(400))
        try await server.start()
        #expect(try await exists)

        let noRetry = try self.client(server.url, retry: .none)
        defer { noRetry.close() }
        server.stop()
        do {
            _ = try await noRetry.listCollections()
            Issue.record("expected a transport error")
        } catch let error as KTQdrantError {
            #expect(error.code == .transport)
        }
    }
}
