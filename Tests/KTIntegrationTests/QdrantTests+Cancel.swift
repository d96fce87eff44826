import Foundation
import KTConfig
import Testing

@testable import KTQdrant

/// Cancelling a task while its Qdrant request waits.
extension QdrantTests {
    @Test(
        "a task cancelled while its request waits on a silent network ends with `cancelled` while the network is still silent, on both transports; the client serves the next request",
        arguments: [QdrantClient.Transport.curl, .urlSession])
    func cancelWhileWaiting(transport: QdrantClient.Transport) async throws {
        let target = try #require(URL(string: TestEnvironment.variables["KT_TEST_QDRANT_URL"] ?? ""))
        let proxy = try TCPProxy(targetPort: target.port ?? 6333)
        defer { proxy.stop() }
        let client = try QdrantClient(
            configuration: .init(url: "http://127.0.0.1:\(proxy.port)", timeout: .seconds(300), retry: .none, transport: transport), logger: logger)
        defer { client.close() }
        _ = try await client.listCollections()
        proxy.freeze()
        let task = Task { try await client.listCollections() }
        // The request is through to the proxy, which holds it.
        #expect(try await TestEnvironment.waitUntil(.seconds(30)) { proxy.held == 1 } != nil)
        // Should the cancellation not stop the request, it is answered once the network is back.
        let watchdog = Watchdog { proxy.thaw() }
        task.cancel()
        await #expect { try await task.value } throws: { ($0 as? KTQdrantError)?.code == .cancelled }
        #expect(await watchdog.disarm() == false, "the request ended only once the network came back")
        proxy.thaw()
        #expect(try await client.listCollections().count >= 0)
    }
}
