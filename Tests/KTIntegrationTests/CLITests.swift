import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Testing

/// The example CLI, run as a process (the `kt` built next to this test bundle) on a fresh world.
@Suite("Example CLI (kt) over real databases", .enabled(if: TestEnvironment.isEnabled))
struct CLITests {
    let logger = TestEnvironment.logger

    /// The `kt` executable, built with the tests (`swift build --build-tests` builds every product).
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kt")
    }

    /// The environment that points `kt` at `world`: system pair, Qdrant, the `shared` external
    /// pair, and empty `.env` and YAML files (the working directory's files are never read).
    static func environment(_ world: TestWorld) throws -> [String: String] {
        let envFile = FileManager.default.temporaryDirectory.appendingPathComponent("kt-cli-\(UUID().uuidString).env")
        try "".write(to: envFile, atomically: true, encoding: .utf8)
        let yamlFile = FileManager.default.temporaryDirectory.appendingPathComponent("kt-cli-\(UUID().uuidString).yaml")
        try "{}\n".write(to: yamlFile, atomically: true, encoding: .utf8)
        let shared = world.settings.graphDatabases["shared"]!
        let databases: [String: [String: String]] = [
            "shared": [
                "graph_database_url": shared.graphDatabaseURL.urlString(includingPassword: true),
                "write_database_url": shared.writeDatabaseURL.urlString(includingPassword: true),
                "qdrant_url": shared.qdrantURL ?? "",
            ]
        ]
        return [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "KT_ENV_FILE": envFile.path,
            "KT_CONFIG_FILE": yamlFile.path,
            "DATABASE_URL": world.systemGraph.urlString(includingPassword: true),
            "WRITE_DATABASE_URL": world.systemWrite.urlString(includingPassword: true),
            "QDRANT_URL": world.settings.qdrant.url,
            "EMBEDDING_DIMENSIONS": "\(world.settings.embeddingDimensions)",
            "GRAPH_DATABASES": String(decoding: try JSONSerialization.data(withJSONObject: databases), as: UTF8.self),
        ]
    }

    /// Runs `kt arguments` and returns its exit status, standard output and standard error.
    static func kt(_ arguments: [String], environment: [String: String]) async throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read both pipes to the end before waiting, so a full pipe cannot stall the child; each
        // on a thread of its own, off the cooperative pool.
        async let out = TestEnvironment.onThread { output.fileHandleForReading.readDataToEndOfFile() }
        async let err = TestEnvironment.onThread { error.fileHandleForReading.readDataToEndOfFile() }
        let (outData, errData) = await (out, err)
        await TestEnvironment.onThread { process.waitUntilExit() }
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    @Test("kt demo writes, syncs and reads back on the default graph and on a graph in the external pair; kt sync --once; bad input is one line on stderr")
    func demoAndSync() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "kt is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.environment(world)
            let onDefault = try await Self.kt(["demo"], environment: environment)
            #expect(onDefault.status == 0, "\(onDefault.error)")
            #expect(onDefault.output.contains("graph 'default': schema public"))
            #expect(onDefault.output.contains("node Photosynthesis: 0 facts, 1 edges, 1 children"))
            #expect(onDefault.output.contains("node Chlorophyll: 1 facts, 1 edges, 0 children"))
            #expect(onDefault.output.contains("fact of Chlorophyll: Chlorophyll absorbs mostly blue and red light"))
            #expect(onDefault.output.contains("shortest path Chlorophyll → Photosynthesis: 3 nodes"))
            #expect(onDefault.output.contains("vector search 'chlorophyll absorbs light': Chlorophyll absorbs mostly blue and red light"))

            let slug = TestEnvironment.uniqueName("cli")
            let created = try await Self.kt(["graphs", "create", "--slug", slug, "--name", "CLI", "--database", "shared"], environment: environment)
            #expect(created.status == 0, "\(created.error)")
            #expect(created.output.contains("created \(slug) (active)"))
            let onExternal = try await Self.kt(["demo", "--graph", slug], environment: environment)
            #expect(onExternal.status == 0, "\(onExternal.error)")
            #expect(onExternal.output.contains("graph '\(slug)': schema graph_\(slug)"))
            #expect(onExternal.output.contains("node Chlorophyll: 1 facts, 1 edges, 0 children"))
            // The demo's rows are in the external pair's graph-db.
            let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.externalGraph), logger: logger) {
                try await $0.query("SELECT count(*) FROM \(TableName("nodes", in: try SchemaName("graph_" + slug)))", logger: logger).first?.decode(0, as: Int.self)
            }
            #expect(count == 3)

            // A write after the demo reaches graph-db with `kt sync --graph --once`.
            _ = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Stomata")
            }
            let synced = try await Self.kt(["sync", "--graph", slug, "--once"], environment: environment)
            #expect(synced.status == 0, "\(synced.error)")
            #expect(synced.output.contains("\(slug): applied 1, deleted 0, deferred 0, failed 0, abandoned 0"))

            let unknown = try await Self.kt(["demo", "--graph", "no_such_graph"], environment: environment)
            #expect(unknown.status == 1)
            #expect(unknown.error.split(separator: "\n").count == 1)
            #expect(unknown.error.contains("no_such_graph"))
            #expect(!unknown.error.contains(world.systemGraph.password?.revealedValue ?? "\u{0}"))
        }
    }

    @Test("kt graphs export, import and move: plain progress lines off a terminal, the copy and the moved graph on the external pair; a damaged file exits 1 with one line")
    func exportImport() async throws {
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.environment(world)
            let slug = TestEnvironment.uniqueName("cliarc"), copy = TestEnvironment.uniqueName("cliarccopy")
            let created = try await Self.kt(["graphs", "create", "--slug", slug, "--name", "CLI archive"], environment: environment)
            #expect(created.status == 0, "\(created.error)")
            _ = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Exported")
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(slug).ktgraph")
            defer { try? FileManager.default.removeItem(at: file) }
            let exported = try await Self.kt(["graphs", "export", slug, "--output", file.path], environment: environment)
            #expect(exported.status == 0, "\(exported.error)")
            #expect(exported.output.contains("] write/write_nodes: 1 rows"), "\(exported.output)")
            #expect(exported.output.contains("exported \(slug) to \(file.path)"))
            let imported = try await Self.kt(["graphs", "import", file.path, "--slug", copy, "--database", "shared"], environment: environment)
            #expect(imported.status == 0, "\(imported.error)")
            #expect(imported.output.contains("imported \(copy) (active)"), "\(imported.output)")
            let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.externalWrite), logger: logger) {
                try await $0.query("SELECT count(*) FROM \(TableName("write_nodes", in: try SchemaName("graph_" + copy)))", logger: logger).first?.decode(0, as: Int.self)
            }
            #expect(count == 1)
            // kt graphs move: plain progress lines, the graph on its new pair; the same pair again exits 1.
            let moved = try await Self.kt(["graphs", "move", slug, "--to", "shared"], environment: environment)
            #expect(moved.status == 0, "\(moved.error)")
            #expect(moved.output.contains("] pause-writes") && moved.output.contains("moved \(slug) to shared"), "\(moved.output)")
            let again = try await Self.kt(["graphs", "move", slug, "--to", "shared"], environment: environment)
            #expect(again.status == 1 && again.error.contains("already on 'shared'"), "\(again.error)")
            var bytes = try Data(contentsOf: file)
            bytes.removeLast(10)
            try bytes.write(to: file)
            let damaged = try await Self.kt(["graphs", "import", file.path, "--slug", "cli_damaged"], environment: environment)
            #expect(damaged.status == 1)
            #expect(damaged.error.split(separator: "\n").count == 1)
            #expect(damaged.error.contains("damaged"), "\(damaged.error)")
        }
    }

    @Test("kt graphs move killed during the copy: the graph stays served from its source as 'moving', kt migrate reports it, a plain move is refused, --resume rolls back and completes")
    func moveKilledAndResumed() async throws {
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.environment(world)
            let slug = TestEnvironment.uniqueName("clikill")
            #expect(try await Self.kt(["graphs", "create", "--slug", slug, "--name", "Killed move"], environment: environment).status == 0)
            _ = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let worker = try await system.workerEngine(slug: slug, logger: logger)
                for start in stride(from: 0, to: 6000, by: 1000) {
                    try await worker.createNodes((start..<start + 1000).map { WorkerGraphEngine.NodeSpec(concept: "Kept \($0)") })
                }
                // Facts with points: the external pair has a Qdrant of its own, and copying them
                // takes seconds, long enough to kill the move in the middle of its copy.
                _ = try await worker.createFacts((0..<2000).map { (content: "Kept fact \($0)", factType: .claim) })
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
            }
            // Kill it as soon as it reports the copy of the points (the databases' are done).
            #expect(try await Self.killWhenPrinted("copy-points", ["graphs", "move", slug, "--to", "shared"], environment: environment))
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let left = try #require(try await repository.graph(slug: slug))
            #expect(left.status == .moving && left.databaseConnectionID == nil)
            let migrate = try await Self.kt(["migrate"], environment: environment)
            #expect(migrate.output.contains("moving (finish with kt graphs move SLUG --to KEY --resume): \(slug)"), "\(migrate.output)")
            let plain = try await Self.kt(["graphs", "move", slug, "--to", "shared"], environment: environment)
            #expect(plain.status == 1 && plain.error.contains("already moving"), "\(plain.error)")
            let resumed = try await Self.kt(["graphs", "move", slug, "--to", "shared", "--resume"], environment: environment)
            #expect(resumed.status == 0, "\(resumed.error)")
            let moved = try #require(try await repository.graph(slug: slug))
            #expect(moved.status == .active && moved.databaseConnectionID != nil)
            let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.externalGraph), logger: logger) {
                try await $0.query("SELECT count(*) FROM \(TableName("nodes", in: try SchemaName("graph_" + slug)))", logger: logger).first?.decode(0, as: Int.self)
            }
            #expect(count == 6000)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.systemWrite) == false)
        }
    }

    /// Runs `kt arguments` and kills it (SIGKILL) as soon as its output holds `text`; returns
    /// whether it printed that before ending.
    static func killWhenPrinted(_ text: String, _ arguments: [String], environment: [String: String]) async throws -> Bool {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let seen = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Thread {
                var printed = ""
                while true {
                    let data = output.fileHandleForReading.availableData
                    if data.isEmpty { return continuation.resume(returning: false) }
                    printed += String(decoding: data, as: UTF8.self)
                    if printed.contains(text) {
                        // Killed from this thread at once: a busy cooperative pool would let the
                        // process run on before the awaiting task resumes.
                        kill(process.processIdentifier, SIGKILL)
                        return continuation.resume(returning: true)
                    }
                }
            }.start()
        }
        kill(process.processIdentifier, SIGKILL)
        await TestEnvironment.onThread { process.waitUntilExit() }
        return seen
    }

    @Test("kt graphs move killed after the switch, before the source is dropped: the graph serves from the target, kt migrate names it, and --resume drops the source")
    func moveKilledAfterSwitch() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "kt is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.environment(world)
            let slug = TestEnvironment.uniqueName("cliswitch")
            #expect(try await Self.kt(["graphs", "create", "--slug", slug, "--name", "Switched"], environment: environment).status == 0)
            _ = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                _ = try await system.workerEngine(slug: slug, logger: logger).createNodes((0..<100).map { WorkerGraphEngine.NodeSpec(concept: "Kept \($0)") })
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
            }
            // drop-source is reported after the switch, before the grace period ends.
            #expect(try await Self.killWhenPrinted("drop-source", ["graphs", "move", slug, "--to", "shared"], environment: environment))
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let left = try #require(try await repository.graph(slug: slug))
            #expect(left.status == .active && left.databaseConnectionID != nil && left.moveSource == "default")
            let schema = "graph_" + slug
            #expect(try await TestEnvironment.schemaExists(schema, on: world.systemWrite))
            let migrate = try await Self.kt(["migrate"], environment: environment)
            #expect(migrate.output.contains("moving (finish with kt graphs move SLUG --to KEY --resume): \(slug)"), "\(migrate.output)")
            let resumed = try await Self.kt(["graphs", "move", slug, "--to", "shared", "--resume"], environment: environment)
            #expect(resumed.status == 0, "\(resumed.error)")
            let done = try #require(try await repository.graph(slug: slug))
            #expect(done.status == .active && done.databaseConnectionID == left.databaseConnectionID && done.moveSource == nil)
            for url in [world.systemGraph, world.systemWrite] { #expect(try await TestEnvironment.schemaExists(schema, on: url) == false) }
            let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.externalGraph), logger: logger) {
                try await $0.query("SELECT count(*) FROM \(TableName("nodes", in: try SchemaName(schema)))", logger: logger).first?.decode(0, as: Int.self)
            }
            #expect(count == 100)
        }
    }
}
