import Foundation
import KTCore
import Logging
import Testing

@testable import KTQdrant

/// Encodes a value and reads it back as a JSON object for comparison.
func json(_ value: some Encodable) throws -> NSDictionary {
    try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as! NSDictionary
}

@Suite("Qdrant request building")
struct QdrantRequestTests {
    let logger = Logger(label: "kt-qdrant-tests")

    @Test("filters encode must / must_not / should with match.value, match.any, match.text and has_id")
    func filters() throws {
        let id = UUID(uuidString: "5C56C793-69F3-4FBF-87E6-C4BF54C28C26")!
        let filter = QdrantFilter(
            must: [.match("fact_type", "claim"), .matchAny("node_ids", ["a", "b"])],
            mustNot: [.hasID([id])],
            should: [.matchText("content", "photosynthesis"), .filter(QdrantFilter(must: [.match("n", 3)]))])
        let expected: NSDictionary = [
            "must": [["key": "fact_type", "match": ["value": "claim"]], ["key": "node_ids", "match": ["any": ["a", "b"]]]],
            "must_not": [["has_id": ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]]],
            "should": [["key": "content", "match": ["text": "photosynthesis"]], ["must": [["key": "n", "match": ["value": 3]]]]],
        ]
        #expect(try json(filter) == expected)
        #expect(try json(QdrantFilter(must: [.match("x", true)])) == ["must": [["key": "x", "match": ["value": true]]]])
    }

    @Test("points carry lower-case UUID ids and typed payloads")
    func points() throws {
        let id = UUID()
        let point = try QdrantPoint(id: id, vector: [0.5, 0.25], payload: FactPayload(factType: "claim", nodeIDs: ["n1"], content: "text"))
        let encoded = try json(point)
        #expect(encoded["id"] as? String == id.uuidString.lowercased())
        #expect(encoded["payload"] as? NSDictionary == ["fact_type": "claim", "node_ids": ["n1"], "content": "text"])
        let seed = try SeedPayload(jsonObject: ["seed_key": "k", "name": "N", "node_type": "concept", "context_text": "ctx"])
        #expect(seed == SeedPayload(seedKey: "k", name: "N", nodeType: "concept", contextText: "ctx"))
    }

    @Test("int8 scalar quantization encodes as Qdrant's ScalarQuantization")
    func quantization() throws {
        #expect(try json(QdrantScalarQuantization(alwaysRAM: true)) == ["scalar": ["type": "int8", "always_ram": true]])
        #expect(try json(QdrantScalarQuantization(quantile: 0.99, alwaysRAM: false)) == ["scalar": ["type": "int8", "quantile": 0.99, "always_ram": false]])
    }

    @Test("collection names: plain for the default graph, <slug>__ for others")
    func collectionNames() {
        #expect(QdrantCollections.defaultGraph.all == ["facts", "nodes", "seeds"])
        #expect(QdrantCollections(graphSlug: "default").all == ["facts", "nodes", "seeds"])
        #expect(QdrantCollections(graphSlug: "news").all == ["news__facts", "news__nodes", "news__seeds"])
    }

    @Test("TLS upgrades http:// to https://; a bad URL is a clear error")
    func urls() throws {
        let client = try QdrantClient(configuration: .init(url: "http://qdrant.internal:6333/", tls: true), logger: logger)
        #expect(client.baseURL.absoluteString == "https://qdrant.internal:6333")
        client.close()
        #expect(throws: KTQdrantError.self) { try QdrantClient(configuration: .init(url: "qdrant:6333"), logger: logger) }
        #expect(QdrantClient.sameServer("http://q:6333/", "HTTP://q:6333"))
        #expect(!QdrantClient.sameServer("http://q:6333", "http://q:6334"))
    }

    @Test("the factory honours TLS and the API key of the configuration it is given")
    func factory() throws {
        let global = QdrantClient.Configuration(url: "http://global:6333", apiKey: Secret("k-123"), timeout: .seconds(30), tls: true)
        let client = try makeQdrantClient(url: "http://graph-qdrant:6333", timeout: .seconds(5), configuration: global, logger: logger)
        #expect(client.baseURL.absoluteString == "https://graph-qdrant:6333")
        #expect(client.configuration.apiKey?.revealedValue == "k-123")
        #expect(client.configuration.timeout == .seconds(5))
        client.close()
        let shared = try QdrantClient.shared(configuration: global, logger: logger)
        #expect(try QdrantClient.shared(configuration: global, logger: logger) === shared)
    }

    @Test("errors: generic description, detail without the API key; only transport errors and 5xx are retryable")
    func errors() {
        let error = KTQdrantError(
            code: .http, message: "Not found: Collection `x` doesn't exist!", httpStatus: 404, operation: "GET /collections/x",
            responseBody: String(repeating: "b", count: 2000))
        #expect(error.description == "KTQdrantError(code: http, httpStatus: 404)")
        #expect(error.responseBody?.count == 512)
        #expect(!error.isRetryable)
        #expect(KTQdrantError(code: .http, message: "", httpStatus: 503).isRetryable)
        #expect(KTQdrantError(code: .transport, message: "").isRetryable)
        #expect(!KTQdrantError(code: .http, message: "", httpStatus: 401).isRetryable)
    }

    @Test("backoff doubles from the base delay up to the maximum")
    func backoff() {
        let policy = QdrantClient.RetryPolicy(maxAttempts: 6, baseDelay: .milliseconds(100), maxDelay: .milliseconds(500))
        #expect(policy.delay(beforeAttempt: 2) <= .milliseconds(100) && policy.delay(beforeAttempt: 2) >= .milliseconds(75))
        #expect(policy.delay(beforeAttempt: 3) <= .milliseconds(200) && policy.delay(beforeAttempt: 3) >= .milliseconds(150))
        #expect(policy.delay(beforeAttempt: 6) <= .milliseconds(500) && policy.delay(beforeAttempt: 6) >= .milliseconds(375))
    }
}

@Suite("Qdrant URL credentials (issue 17, item 20)")
struct QdrantURLRedactionTests {
    @Test("an invalid Qdrant URL with user information is quoted redacted in the error")
    func invalidURL() {
        do {
            _ = try QdrantClient(configuration: .init(url: "ftp://user:S3cret@qdrant.example"), logger: Logger(label: "test"))
            Issue.record("ftp is not accepted")
        } catch {
            let message = (error as? KTQdrantError)?.message ?? ""
            #expect(!"\(error) \(message)".contains("S3cret"))
            #expect(message.contains("ftp://***@qdrant.example"))
        }
    }
}
