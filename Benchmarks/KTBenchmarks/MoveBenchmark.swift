import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Synchronization

/// Section 7 (`move`): moving a graph of 100,000 nodes and 200,000 facts to another pair, against
/// `pg_dump -n graph_<slug> | psql` of the same two schemas into scratch databases on the target
/// servers, in the same run; and the write pause the move imposes. With a target Qdrant
/// (`KT_BENCH_TARGET_QDRANT_URL`), `points` node points are copied too, timed apart.
enum MoveBenchmark {
    static func run(
        graphURL: DatabaseURL, writeURL: DatabaseURL, targetGraphURL: DatabaseURL, targetWriteURL: DatabaseURL, qdrantURL: String,
        targetQdrantURL: String?, nodes: Int, facts: Int, points: Int, logger: Logger
    ) async throws {
        var settings = Settings.benchmark(graphURL: graphURL, writeURL: writeURL, qdrantURL: qdrantURL)
        settings.graphDatabases["bench_target"] = GraphDatabaseConfig(graphDatabaseURL: targetGraphURL, writeDatabaseURL: targetWriteURL, qdrantURL: targetQdrantURL)
        try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-bench"), logger: logger) { system in
            _ = try await system.prepare()
            let repository = GraphRepository(system.controlPlane, logger: logger)
            if try await repository.databaseConnection(configKey: "bench_target") == nil {
                try await repository.createDatabaseConnection(name: "Benchmark target", configKey: "bench_target")
            }
            let slug = "move_" + UUID().uuidString.prefix(8).lowercased()
            try await system.provisioner.createGraph(slug: slug, name: "Move benchmark")
            let worker = try await system.workerEngine(slug: slug, logger: logger)
            let made = ContinuousClock.now
            for start in stride(from: 0, to: nodes, by: 2000) {
                try await worker.createNodes((start..<min(start + 2000, nodes)).map { WorkerGraphEngine.NodeSpec(concept: "Moved node \($0)") })
            }
            for start in stride(from: 0, to: facts, by: 2000) {
                try await worker.createFacts((start..<min(start + 2000, facts)).map { (content: "moved fact \($0) with some words in it", factType: "claim") })
            }
            try await system.sessions(slug: slug).syncEngine(settings: settings.sync, logger: logger).syncUntilIdle(maxCycles: 10_000)
            let pointCount = targetQdrantURL == nil ? 0 : min(points, nodes)
            if pointCount > 0 {
                // Points of the first nodes (the worker's bulk insert writes none), with their ids.
                let sessions = try await system.sessions(slug: slug)
                for start in stride(from: 0, to: pointCount, by: 500) {
                    try await sessions.qdrant.upsert(
                        sessions.collections.nodes,
                        points: (start..<min(start + 500, pointCount)).map { index in
                            QdrantPoint(
                                id: GraphKeys.id(forKey: GraphKeys.nodeKey("Moved node \(index)")),
                                vector: (0..<settings.embeddingDimensions).map { Float(($0 * 31 + index) % 97) + 1 }, payload: ["concept": .string("Moved node \(index)")])
                        })
                }
            }

            // Reference: pg_dump of both schemas into scratch databases on the target servers.
            let schema = "graph_" + slug
            let filled = ContinuousClock.now
            var reference = 0.0
            for (from, to) in [(graphURL, targetGraphURL), (writeURL, targetWriteURL)] {
                let scratch = "kt_bench_dump_" + UUID().uuidString.prefix(8).lowercased()
                try await PostgresConnection.withConnection(configuration: .init(url: to, applicationName: "kt-bench"), logger: logger) {
                    try await $0.execute(simple: "CREATE DATABASE \(scratch)", logger: logger)
                }
                var scratchURL = to
                scratchURL.database = scratch
                try await PostgresConnection.withConnection(configuration: .init(url: scratchURL, applicationName: "kt-bench"), logger: logger) {
                    try await $0.execute(simple: "CREATE EXTENSION IF NOT EXISTS pg_trgm", logger: logger)
                }
                let start = ContinuousClock.now
                let status = try shell(
                    "pg_dump --no-owner --no-privileges -n '\(schema)' '\(from.urlString(includingPassword: true))' | psql -q -v ON_ERROR_STOP=1 '\(scratchURL.urlString(includingPassword: true))' > /dev/null"
                )
                reference += (ContinuousClock.now - start).seconds
                try await PostgresConnection.withConnection(configuration: .init(url: to, applicationName: "kt-bench"), logger: logger) {
                    try await $0.execute(simple: "DROP DATABASE \(scratch)", logger: logger)
                }
                guard status == 0 else { throw KTProvisionError(code: .stepFailed, message: "pg_dump | psql exited \(status)") }
            }

            print(String(format: "  (writing and syncing the graph took %.1f s, untimed)", (filled - made).seconds))
            // The points to copy (the facts' too: the worker embeds every fact), and the target
            // Qdrant's own upsert rate at the mover's batch size, as a reference.
            var totalPoints = 0, referenceRate = 0.0
            if let targetQdrantURL {
                let sessions = try await system.sessions(slug: slug)
                for name in sessions.collections.all { totalPoints += try await sessions.qdrant.count(name) }
                let target = try makeQdrantClient(url: targetQdrantURL, timeout: .seconds(60), configuration: settings.qdrant, logger: logger)
                defer { target.close() }
                let scratch = "kt_bench_points_" + UUID().uuidString.prefix(8).lowercased()
                _ = try await target.ensureCollection(scratch, vectorSize: settings.embeddingDimensions)
                let sample = 2560, began = ContinuousClock.now
                for start in stride(from: 0, to: sample, by: 256) {
                    try await target.upsert(
                        scratch,
                        points: (start..<start + 256).map { index in
                            QdrantPoint(id: UUID(), vector: (0..<settings.embeddingDimensions).map { Float(($0 * 31 + index) % 97) + 1 }, payload: ["concept": .string("Sample \(index)")])
                        })
                }
                referenceRate = Double(sample) / (ContinuousClock.now - began).seconds
                _ = try await target.deleteCollection(scratch)
            }
            let phases = PhaseClock()
            let start = ContinuousClock.now
            try await system.provisioner.moveGraph(slug: slug, toDatabase: "bench_target", grace: .zero) { phases.record($0.phase) }
            let moved = (ContinuousClock.now - start).seconds
            let pause = phases.between("pause-writes", and: "switch")
            let pointsCopy = targetQdrantURL != nil ? phases.between("copy-points", and: "pause-writes") : 0
            let dropping = phases.since("drop-source", until: .now)
            try await system.provisioner.deleteGraph(slug: slug, hard: true)
            print("move: a graph of \(nodes) nodes and \(facts) facts (both schemas, \(totalPoints) points) to another pair")
            print(
                String(
                    format: "  move %.2f s without the points' copy (dropping the source %.2f s of it) vs pg_dump | psql of both schemas %.2f s: speed ratio %.2fx (target >= 0.5x)",
                    moved - pointsCopy, dropping, reference, reference / (moved - pointsCopy)))
            if totalPoints > 0 {
                let rate = Double(totalPoints) / pointsCopy
                print(
                    String(
                        format: "  the points' copy, apart: %d points in %.2f s, %.0f points/s; the target Qdrant's own upsert rate %.0f points/s: ratio %.2fx",
                        totalPoints, pointsCopy, rate, referenceRate, rate / referenceRate))
            }
            print(String(format: "  write pause (pause-writes to switch) %.2f s (target <= 1 s)", pause))
            print("  phases: " + phases.breakdown(until: .now))
        }
    }

    /// Runs a shell pipeline; returns its exit status.
    private static func shell(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// When each phase of a move started.
private final class PhaseClock: Sendable {
    private let starts = Mutex<[String: ContinuousClock.Instant]>([:])

    func record(_ phase: String) { starts.withLock { $0[phase] = $0[phase] ?? .now } }

    func between(_ first: String, and second: String) -> Double {
        starts.withLock { starts in
            guard let a = starts[first], let b = starts[second] else { return .nan }
            return (b - a).seconds
        }
    }

    /// `phase 1.23 s, …` in the order the phases started.
    func breakdown(until end: ContinuousClock.Instant) -> String {
        let ordered = starts.withLock { $0.sorted { $0.value < $1.value } }
        return ordered.enumerated().map { index, entry in
            let next = index + 1 < ordered.count ? ordered[index + 1].value : end
            return String(format: "%@ %.2f s", entry.key, (next - entry.value).seconds)
        }.joined(separator: ", ")
    }

    func since(_ phase: String, until end: ContinuousClock.Instant) -> Double {
        starts.withLock { starts in starts[phase].map { (end - $0).seconds } ?? .nan }
    }
}
