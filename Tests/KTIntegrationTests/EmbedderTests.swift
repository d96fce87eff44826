import Foundation
import Hummingbird
import KTConfig
import KTCore
import KTGraph
import KTProvision
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// `OpenAICompatibleEmbedder` over real HTTP, against a stub of the `/embeddings` endpoint.
@Suite("OpenAI-compatible embedder (real HTTP, stub service)")
struct EmbedderTests {
    let logger = TestEnvironment.logger

    /// What the stub saw of the last request.
    final class Seen: Sendable {
        struct Call: Sendable {
            var authorization: String?
            var path: String
            var model: String?
            var input: [String]?
        }
        let request: Mutex<Call?>
        init() { request = Mutex(nil) }
    }

    /// Serves `/v1/embeddings` with `reply` on a free port for the duration of `body`.
    func withStub(
        _ reply: @escaping @Sendable (_ input: [String], _ authorization: String?) -> (status: HTTPResponse.Status, json: String),
        _ body: @Sendable (URL, Seen) async throws -> Void
    ) async throws {
        let seen = Seen()
        let router = Router()
        router.post("v1/embeddings") { request, context -> Response in
            let data = try await request.body.collect(upTo: 1 << 20)
            let json = try JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any]
            let authorization = request.headers[.authorization]
            let seenRequest = Seen.Call(authorization: authorization, path: request.uri.path, model: json?["model"] as? String, input: json?["input"] as? [String])
            seen.request.withLock { $0 = seenRequest }
            let (status, text) = reply(json?["input"] as? [String] ?? [], authorization)
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw KTGraphError(code: .embedding, message: "stub did not start") }
            do {
                try await body(URL(string: "http://127.0.0.1:\(port)/v1")!, seen)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// An `/embeddings` answer: vector `i` is `[i, i + 0.5, …]` of `dimensions`, listed in reverse order.
    static func answer(_ input: [String], dimensions: Int) -> String {
        let items = input.indices.reversed().map { index in
            let vector = (0..<dimensions).map { "\(Double(index) + Double($0) / 2)" }.joined(separator: ",")
            return #"{"object":"embedding","index":\#(index),"embedding":[\#(vector)]}"#
        }
        return #"{"object":"list","data":[\#(items.joined(separator: ","))],"model":"m"}"#
    }

    @Test("sends the model, the texts and the bearer key; returns the vectors in input order")
    func embeds() async throws {
        try await withStub({ input, _ in (.ok, Self.answer(input, dimensions: 3)) }) { base, seen in
            var settings = Settings()
            settings.embeddingBaseURL = base
            settings.embeddingModel = "test-model"
            settings.embeddingAPIKey = Secret("sk-test-1234")
            settings.embeddingDimensions = 3
            let embedder = settings.embedder
            #expect(embedder is OpenAICompatibleEmbedder)
            let vectors = try await embedder.embed(["first", "second", "third"])
            #expect(vectors == [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
            let request = seen.request.withLock { $0 }
            #expect(request?.path == "/v1/embeddings")
            #expect(request?.authorization == "Bearer sk-test-1234")
            #expect(request?.model == "test-model")
            #expect(request?.input == ["first", "second", "third"])
            #expect(try await embedder.embed([]) == [])
        }
        // Without a base URL the settings describe the local embedder.
        var local = Settings()
        local.embeddingDimensions = 8
        #expect(try await local.embedder.embed("photosynthesis").count == 8)
    }

    @Test("a refusal, a wrong vector length, a malformed body and an unreachable service are embedding errors that never show the key")
    func failures() async throws {
        let key = "sk-secret-abcdef"
        // The stub echoes the credentials it refuses, as some services do.
        try await withStub({ input, authorization in
            switch input.first {
            case "refuse": (.unauthorized, #"{"error":"invalid key: \#(authorization ?? "")"}"#)
            case "short": (.ok, Self.answer(input, dimensions: 2))
            case "count": (.ok, Self.answer(input + ["extra"], dimensions: 3))
            default: (.ok, "not json")
            }
        }) { base, _ in
            let embedder = OpenAICompatibleEmbedder(baseURL: base, model: "m", dimensions: 3, apiKey: Secret(key))
            for (text, expected) in [("refuse", "answered 401"), ("short", "length 2, expected 3"), ("count", "unexpected body"), ("garbage", "unexpected body")] {
                let error = await #expect(throws: KTGraphError.self) { try await embedder.embed(text) }
                #expect(error?.code == .embedding)
                #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
                #expect(error.map { !String(reflecting: $0).contains(key) } == true)
            }
        }
        // Nothing listens on port 9 of the loopback address.
        let unreachable = OpenAICompatibleEmbedder(baseURL: URL(string: "http://127.0.0.1:9/v1")!, model: "m", dimensions: 3, apiKey: Secret(key), timeout: .seconds(5))
        let error = await #expect(throws: KTGraphError.self) { try await unreachable.embed("x") }
        #expect(error?.code == .embedding && error?.message.contains("failed") == true)
        #expect(error.map { !String(reflecting: $0).contains(key) } == true)
    }
}
