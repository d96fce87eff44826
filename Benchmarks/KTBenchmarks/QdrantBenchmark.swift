import Foundation
import KTConfig
import KTQdrant
import Logging

/// Per-request latency of `upsert` (1 point) and `query` (limit 10) through `QdrantClient`,
/// as a ratio to one curl process making the same requests over one kept-alive connection
/// (`--next`), against the same server in the same run (target <= 1.2x).
enum QdrantBenchmark {
    static func run(url: String, requests: Int, logger: Logger) async throws {
        for transport in [QdrantClient.Transport.curl, .urlSession] {
            try await run(url: url, requests: requests, transport: transport, logger: logger)
        }
    }

    static func run(url: String, requests: Int, transport: QdrantClient.Transport, logger: Logger) async throws {
        let client = try QdrantClient(configuration: .init(url: url, transport: transport), logger: logger)
        defer { client.close() }
        let collection = "kt_bench_\(UInt32.random(in: 0...UInt32.max))"
        try await client.createCollection(collection, vectorSize: 8)
        defer { Task { [client] in _ = try? await client.deleteCollection(collection) } }
        let vector: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
        let pointID = UUID()
        try await client.upsert(collection, points: (0..<20).map { _ in QdrantPoint(id: UUID(), vector: vector.shuffled(), payload: ["k": "v"]) })

        let upsertBody = #"{"points":[{"id":"\#(pointID.uuidString.lowercased())","vector":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],"payload":{"k":"v"}}]}"#
        let queryBody = #"{"query":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],"limit":10,"with_payload":true,"with_vector":false}"#
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url

        // Warm up both paths.
        _ = try curl(method: "PUT", url: "\(base)/collections/\(collection)/points?wait=true", body: upsertBody, count: 20)
        for _ in 0..<20 { _ = try await client.query(collection, QdrantQuery(vector: vector, limit: 10)) }

        let curlUpsert = try curl(method: "PUT", url: "\(base)/collections/\(collection)/points?wait=true", body: upsertBody, count: requests)
        let ourUpsert = try await measure(requests) {
            try await client.upsert(collection, points: [QdrantPoint(id: pointID, vector: vector, payload: ["k": "v"])])
        }
        let curlQuery = try curl(method: "POST", url: "\(base)/collections/\(collection)/points/query", body: queryBody, count: requests)
        let ourQuery = try await measure(requests) {
            _ = try await client.query(collection, QdrantQuery(vector: vector, limit: 10))
        }
        print("Qdrant client (transport: \(transport)) vs curl over one kept-alive connection (\(requests) sequential requests, target <= 1.20x)")
        print(String(format: "  upsert 1 point   client %7.0f us   curl %7.0f us   ratio %.2fx", ourUpsert, curlUpsert, ourUpsert / curlUpsert))
        print(String(format: "  query limit 10   client %7.0f us   curl %7.0f us   ratio %.2fx", ourQuery, curlQuery, ourQuery / curlQuery))
    }

    /// Microseconds per call of `body`, run `count` times in sequence.
    static func measure(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        for _ in 0..<count { try await body() }
        return microseconds(ContinuousClock.now - start) / Double(count)
    }

    static func microseconds(_ duration: Duration) -> Double {
        duration.seconds * 1e6
    }

    /// Microseconds per request of one curl process making `count` requests with `next`.
    static func curl(method: String, url: String, body: String, count: Int) throws -> Double {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("kt-bench-\(UUID().uuidString).curl")
        var text = ""
        for index in 0..<count {
            if index > 0 { text += "next\n" }
            text += "url = \"\(url)\"\nrequest = \"\(method)\"\nheader = \"Content-Type: application/json\"\nheader = \"Accept: application/json\"\n"
            text += "data = \"\(body.replacingOccurrences(of: "\"", with: "\\\""))\"\noutput = \"/dev/null\"\nsilent\n"
        }
        try text.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-K", config.path]
        process.standardOutput = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - start
        guard process.terminationStatus == 0 else { throw KTQdrantError(code: .transport, message: "curl exited with \(process.terminationStatus)") }
        return microseconds(elapsed) / Double(count)
    }
}
