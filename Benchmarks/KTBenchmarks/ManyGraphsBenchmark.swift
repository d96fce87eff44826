import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// 1,000 graphs on one database pair, served by one `kt-server` process (a child of this one):
/// every graph read once (one node each), then the connections the server holds per database
/// (target: at most pool size + overflow), its resident memory (target < 128 MB), and
/// `GET /api/v1/graphs` latency p50/p99 over 200 calls (target p99 < 50 ms).
///
/// The graphs are rows, schemas and one node each (no Qdrant collections: no read here touches
/// Qdrant); they are created once per database and reused while they exist.
enum ManyGraphsBenchmark {
    static let prefix = "many"

    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String, count: Int, serverPath: String, logger: Logger) async throws {
        let settings = Settings.benchmark(graphURL: graphURL, writeURL: writeURL, qdrantURL: qdrantURL)
        let (slugs, token) = try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-bench"), logger: logger) { system in
            _ = try await system.prepare()
            let slugs = try await ensureGraphs(count, system: system, logger: logger)
            let users = UserRepository(system.controlPlane, logger: logger)
            let admin = try await users.createUser(email: "bench-\(UUID().uuidString.prefix(8))@example.org", isSuperuser: true)
            return (slugs, try await users.issueToken(userID: admin.id).token.revealedValue)
        }

        let server = try await ChildServer(path: serverPath, settings: settings)
        defer { server.stop() }
        let configuration = URLSessionConfiguration.default
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration)
        defer { session.invalidateAndCancel() }
        func get(_ path: String) async throws -> (Int, Data) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)\(path)")!)
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            let (data, response) = try await session.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }

        // One node from each graph, 16 requests at a time.
        let readStart = ContinuousClock.now
        var failed = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            var pending = slugs[...]
            func next() {
                guard let slug = pending.popFirst() else { return }
                group.addTask { try await get("/api/v1/graphs/\(slug)/nodes?limit=1").0 }
            }
            for _ in 0..<16 { next() }
            while let status = try await group.next() {
                if status != 200 { failed += 1 }
                next()
            }
        }
        let readSeconds = (ContinuousClock.now - readStart).seconds

        var latencies: [Double] = []
        for _ in 0..<200 {
            let start = ContinuousClock.now
            let (status, data) = try await get("/api/v1/graphs")
            latencies.append(QdrantBenchmark.microseconds(ContinuousClock.now - start) / 1000)
            guard status == 200, data.count > 1000 else { throw KTDBError(code: .invalidArgument, message: "GET /api/v1/graphs answered \(status)") }
        }
        latencies.sort()
        let held = try await connections(application: "kt-api", databases: [graphURL, writeURL])
        let rss = server.residentMegabytes

        print(
            "\(slugs.count) graphs on one pair through one kt-server process (defaults: graph-db pool \(settings.graphPool.size)+\(settings.graphPool.maxOverflow), write-db \(settings.writePool.size)+\(settings.writePool.maxOverflow))"
        )
        print(String(format: "  read one node from each graph: %.1f s, %d failed", readSeconds, failed))
        print("  connections held by the server: graph-db \(held[0]) (target <= \(settings.graphPool.maximumConnections)), write-db \(held[1]) (target <= \(settings.writePool.maximumConnections))")
        print(String(format: "  server RSS %.1f MB (target < 128 MB)", rss))
        print(
            String(
                format: "  GET /api/v1/graphs (%d graphs): p50 %.1f ms, p99 %.1f ms (target p99 < 50 ms)",
                slugs.count + 1, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))
    }

    /// The benchmark's graphs: reused when they exist, else created (rows, both schemas migrated,
    /// one node each, status active), four at a time.
    static func ensureGraphs(_ count: Int, prefix: String = ManyGraphsBenchmark.prefix, system: GraphSystem, logger: Logger) async throws -> [String] {
        let slugs = (0..<count).map { String(format: "\(prefix)_%04d", $0) }
        let repository = GraphRepository(system.controlPlane, logger: logger)
        let existing = Set(try await repository.listActive().map(\.slug))
        let missing = slugs.filter { !existing.contains($0) }
        guard !missing.isEmpty else { return slugs }
        print("  creating \(missing.count) graphs (kept for later runs on this database)")
        let graphTarget = DatabaseEndpoint.systemGraph(system.settings), writeTarget = DatabaseEndpoint.systemWrite(system.settings)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<4 {
                group.addTask {
                    try await PostgresConnection.withConnection(configuration: graphTarget.oneOffConnection(application: "kt-bench"), logger: logger) { graphDB in
                        try await PostgresConnection.withConnection(configuration: writeTarget.oneOffConnection(application: "kt-bench"), logger: logger) { writeDB in
                            for slug in missing.enumerated().filter({ $0.offset % 4 == lane }).map(\.element) {
                                var graph = try await repository.graph(slug: slug)
                                if graph == nil { graph = try await repository.create(slug: try GraphSlug(slug), name: slug) }
                                guard let graph else { continue }
                                let schema = try SchemaName("graph_" + slug)
                                try await Migrator.migrateGraph(schema: schema, graphDB: graphDB, writeDB: writeDB, logger: logger)
                                try await graphDB.query("INSERT INTO \(TableName("nodes", in: schema)) (id, concept) VALUES (\(UUID()), \(slug))", logger: logger)
                                try await repository.update(id: graph.id, status: .active)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        return slugs
    }

    /// Connections whose `application_name` is `application`, to each of `databases` (counted on each one's server).
    static func connections(application: String, databases: [DatabaseURL]) async throws -> [Int] {
        var counts: [Int] = []
        for url in databases {
            counts.append(
                try await PostgresConnection.withConnection(configuration: .init(url: url, applicationName: "kt-bench", preparedStatements: .disabled), logger: logger) {
                    try await $0.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = \(application) AND datname = \(url.database ?? "")", logger: logger)
                        .first?.decode(0, as: Int.self) ?? 0
                })
        }
        return counts
    }
}

/// `kt-server` as a child process on a port it picks (read from its first line of output).
final class ChildServer: @unchecked Sendable {
    let process = Process()
    let port: Int

    init(path: String, settings: Settings) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kt-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "".write(to: folder.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        try "{}\n".write(to: folder.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: path)
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "KT_ENV_FILE": folder.appendingPathComponent(".env").path, "KT_CONFIG_FILE": folder.appendingPathComponent("config.yaml").path,
            "DATABASE_URL": settings.databaseURL.urlString(includingPassword: true),
            "WRITE_DATABASE_URL": settings.writeDatabaseURL.urlString(includingPassword: true),
            "QDRANT_URL": settings.qdrant.url, "EMBEDDING_DIMENSIONS": "\(settings.embeddingDimensions)",
            "KT_HOST": "127.0.0.1", "KT_PORT": "0", "LOG_LEVEL": "error",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line says where it listens (after startup, which checks every graph's migrations).
        let line: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes = Data()
                while let byte = try? output.fileHandleForReading.read(upToCount: 1), let first = byte.first, first != UInt8(ascii: "\n") { bytes.append(first) }
                continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
            }
        }
        guard let text = line.split(separator: ":").last, let port = Int(text) else {
            process.terminate()
            throw KTDBError(code: .connectionFailed, message: "kt-server did not start: '\(line)'")
        }
        self.port = port
    }

    /// The process's resident set size in MB (`VmRSS` of `/proc/<pid>/status`).
    var residentMegabytes: Double {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

extension Settings {
    /// The benchmarks' settings: the system pair on `graphURL` and `writeURL` (both reached
    /// directly, as `scripts/bench` starts them: no pooler in front), 8-dimension vectors.
    static func benchmark(graphURL: DatabaseURL, writeURL: DatabaseURL, qdrantURL: String) -> Settings {
        var settings = Settings()
        settings.writeDBPgBouncer = false
        settings.databaseURL = graphURL
        settings.writeDatabaseURL = writeURL
        settings.qdrant.url = qdrantURL
        settings.embeddingDimensions = 8
        return settings
    }
}
