import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Synchronization
import Testing

/// What the writer and the reader of a move test saw.
final class MoveLoad: Sendable {
    let stop = Atomic<Bool>(false)
    let acknowledged = Mutex<[Int]>([]), writeErrors = Mutex<[String]>([]), paused = Atomic<Int>(0)
    let reads = Atomic<Int>(0), readErrors = Mutex<[String]>([]), phases = Mutex<[String]>([])
}

/// Moving a graph between database pairs (issue 18).
@Suite("Graph moves (real servers)", .enabled(if: TestEnvironment.isEnabled))
struct MoveTests {
    let logger = TestEnvironment.logger

    private static func count(_ sql: String, schema: String, on url: DatabaseURL, logger: Logger) async throws -> Int {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
            try await c.execute(simple: "SET search_path TO \"\(schema)\"", logger: logger)
            return try await c.query(PostgresQuery(unsafeSQL: sql), logger: logger).first!.decode(0, as: Int.self)
        }
    }

    @Test(
        "a graph with data moves to the external pair and back while a worker writes and a reader reads: the reader never fails, no acknowledged write is lost, every table equals what was there plus the writes, and each source is dropped"
    )
    func moveThereAndBack() async throws {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let slug = TestEnvironment.uniqueName("mv")
                try await system.provisioner.createGraph(slug: slug, name: "Moving")
                let worker = try await system.workerEngine(slug: slug, logger: logger)
                var first: GraphNode?
                for index in 0..<60 {
                    let node = try await worker.createNode(concept: "Base \(index)", embedding: [1, Float(index), 0, 0, 0, 0, 0, 1])
                    if first == nil { first = node }
                }
                // Enough rows that the catch-up, which copies only what changed, is visibly smaller.
                _ = try await worker.createNodes((0..<2000).map { WorkerGraphEngine.NodeSpec(concept: "Bulk \($0)") })
                let facts = try await worker.createFacts((0..<100).map { (content: "fact \($0)", factType: "claim") })
                // Deletions leave tombstones (a serial key): the target must go on numbering after them.
                for fact in facts.prefix(5) { try await worker.deleteFact(id: fact.id) }
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                let probe = try #require(first)
                // Every table before the load, to compare with after it (what the writes change apart).
                let schemaName = "graph_" + slug
                let before = try await ArchiveTests.tableDigests(schemaName, on: world.systemGraph, logger: logger)
                    .merging(try await ArchiveTests.tableDigests(schemaName, on: world.systemWrite, logger: logger)) { a, _ in a }

                let load = MoveLoad()
                let logger = self.logger
                async let writing: Void = {
                    var index = 0
                    while !load.stop.load(ordering: .relaxed), !Task.isCancelled {
                        do {
                            try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Written \(index)", embedding: [0, 1, Float(index), 0, 0, 0, 0, 1])
                            load.acknowledged.withLock { $0.append(index) }
                            index += 1
                            try? await Task.sleep(for: .milliseconds(10))
                        } catch let error as KTDBError where error.sqlState == GraphProvisioner.writesPausedSQLState {
                            load.paused.add(1, ordering: .relaxed)
                            try? await Task.sleep(for: .milliseconds(20))
                        } catch {
                            load.writeErrors.withLock { $0.append("\(error)") }
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }()
                async let reading: Void = {
                    while !load.stop.load(ordering: .relaxed), !Task.isCancelled {
                        do {
                            guard try await system.readEngine(slug: slug, logger: logger).node(id: probe.id) != nil else {
                                load.readErrors.withLock { $0.append("the probe node was missing") }
                                try? await Task.sleep(for: .milliseconds(5))
                                continue
                            }
                            load.reads.add(1, ordering: .relaxed)
                        } catch {
                            load.readErrors.withLock { $0.append("\(error)") }
                        }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }()

                try await Task.sleep(for: .milliseconds(300))
                let there = try await system.provisioner.moveGraph(slug: slug, toDatabase: "shared") { event in
                    load.phases.withLock { $0.append(event.detail.isEmpty ? event.phase : "\(event.phase): \(event.detail)") }
                }
                #expect(there.status == .active && there.databaseConnectionID != nil)
                let phases = load.phases.withLock { $0 }
                #expect(phases.contains("pause-writes"))
                // The snapshot copies carried the bulk; the pause copied only what changed since.
                let copied = phases.compactMap { $0.hasPrefix("copy-write-db: ") ? Int($0.dropFirst(15).prefix { $0.isNumber }) : nil }.first ?? 0
                let caughtUp = phases.compactMap { $0.hasPrefix("catch-up: ") ? Int($0.dropFirst(10).prefix { $0.isNumber }) : nil }.first
                #expect(copied > 2000 && (caughtUp ?? .max) < 1000, "\(phases)")
                try await system.workerEngine(slug: slug, logger: logger).deleteFact(id: facts[5].id)
                logger.debug("test: moved there")
                try await Task.sleep(for: .milliseconds(300))
                logger.debug("test: moving back")
                let back = try await system.provisioner.moveGraph(slug: slug, toDatabase: "default")
                #expect(back.status == .active && back.databaseConnectionID == nil)
                try await Task.sleep(for: .milliseconds(300))
                load.stop.store(true, ordering: .relaxed)
                _ = await (writing, reading)

                #expect(load.readErrors.withLock { $0 }.isEmpty, "\(load.readErrors.withLock { $0.prefix(3) })")
                #expect(load.writeErrors.withLock { $0 }.isEmpty, "\(load.writeErrors.withLock { $0.prefix(3) })")
                #expect(load.reads.load(ordering: .relaxed) > 10)
                let written = load.acknowledged.withLock { $0.count }
                #expect(written > 0)
                let schema = "graph_" + slug
                // Every acknowledged write is in write-db, and reaches graph-db.
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                #expect(try await Self.count("SELECT count(*) FROM write_nodes WHERE concept LIKE 'Written %'", schema: schema, on: world.systemWrite, logger: logger) == written)
                #expect(try await Self.count("SELECT count(*) FROM nodes WHERE concept LIKE 'Written %'", schema: schema, on: world.systemGraph, logger: logger) == written)
                #expect(try await Self.count("SELECT count(*) FROM nodes WHERE concept LIKE 'Base %'", schema: schema, on: world.systemGraph, logger: logger) == 60)
                #expect(try await Self.count("SELECT count(*) FROM write_facts", schema: schema, on: world.systemWrite, logger: logger) == 94)
                #expect(try await Self.count("SELECT count(*) FROM facts", schema: schema, on: world.systemGraph, logger: logger) == 94)
                #expect(try await Self.count("SELECT count(*) FROM write_tombstones WHERE table_name = 'write_facts'", schema: schema, on: world.systemWrite, logger: logger) == 6)
                // Every other table is as it was before the load: the writes added nodes (and their
                // counters' rows), one fact was deleted (its tombstone), and the sync moved its watermarks.
                let after = try await ArchiveTests.tableDigests(schema, on: world.systemGraph, logger: logger)
                    .merging(try await ArchiveTests.tableDigests(schema, on: world.systemWrite, logger: logger)) { a, _ in a }
                let touchedByLoad = ["write_nodes", "nodes", "write_facts", "facts", "write_tombstones", "sync_watermarks"]
                #expect(Set(after.keys) == Set(before.keys))
                let unchanged = before.filter { !touchedByLoad.contains($0.key) }
                #expect(unchanged == after.filter { !touchedByLoad.contains($0.key) }, "\(unchanged.filter { after[$0.key] != $0.value }.keys.sorted())")
                // Exactly the acknowledged writes, each once.
                let concepts = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.systemGraph), logger: logger) { c in
                    try await c.query("SELECT concept FROM \(TableName("nodes", in: try SchemaName(schema))) WHERE concept LIKE 'Written %'", logger: logger).rows.map {
                        try $0.decode(0, as: String.self)
                    }
                }
                #expect(concepts.sorted() == load.acknowledged.withLock { $0 }.map { "Written \($0)" }.sorted())
                // The external pair's copy is gone; the points came back with the graph.
                #expect(try await TestEnvironment.schemaExists(schema, on: world.externalGraph) == false)
                #expect(try await TestEnvironment.schemaExists(schema, on: world.externalWrite) == false)
                let qdrant = try makeQdrantClient(url: world.settings.qdrant.url, timeout: .seconds(10), logger: logger)
                defer { qdrant.close() }
                // Every node written with a vector has its point, those written during the copies too.
                #expect(try await qdrant.count(QdrantCollections(graphSlug: slug).nodes) == 60 + written)
            }
        }
    }

    @Test(
        "refusals: an unknown key, the pair the graph is on, a key naming the databases it is in, the default graph; a move whose target cannot be reached leaves the graph active on its source and nothing on the target"
    )
    func refusalsAndFailure() async throws {
        try await TestWorld.with(logger: logger) { world in
            // A second key naming the system pair's databases: a move there would drop the graph itself.
            var settings = world.settings
            settings.graphDatabases["alias"] = GraphDatabaseConfig(graphDatabaseURL: world.systemGraph, writeDatabaseURL: world.systemWrite)
            try await GraphRepository(world.controlPlane, logger: logger).createDatabaseConnection(name: "Alias", configKey: "alias")
            try await withGraphSystem(settings: settings, logger: logger) { system in
                let slug = TestEnvironment.uniqueName("mvno")
                try await system.provisioner.createGraph(slug: slug, name: "Staying")
                try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Stays")
                let alias = await #expect(throws: KTProvisionError.self) { try await system.provisioner.moveGraph(slug: slug, toDatabase: "alias") }
                #expect(alias?.code == .invalidState)
                #expect(try await Self.count("SELECT count(*) FROM write_nodes", schema: "graph_" + slug, on: world.systemWrite, logger: logger) == 1)
                let unknown = await #expect(throws: KTProvisionError.self) { try await system.provisioner.moveGraph(slug: slug, toDatabase: "nowhere") }
                #expect(unknown?.code == .unknownConnection)
                let same = await #expect(throws: KTProvisionError.self) { try await system.provisioner.moveGraph(slug: slug, toDatabase: "default") }
                #expect(same?.code == .invalidState)
                let base = await #expect(throws: KTProvisionError.self) { try await system.provisioner.moveGraph(slug: "default", toDatabase: "shared") }
                #expect(base?.code == .invalidState)
                let failed = await #expect(throws: KTProvisionError.self) { try await system.provisioner.moveGraph(slug: slug, toDatabase: "broken") }
                #expect(failed?.code == .stepFailed)
                let graph = try #require(try await GraphRepository(world.controlPlane, logger: logger).graph(slug: slug))
                #expect(graph.status == .active && graph.databaseConnectionID == nil && graph.moveTarget == nil)
                #expect(graph.provisioningError?.contains("prepare-target") == true)
                // Still writable and readable on its source.
                try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Still writable")
            }
        }
    }

    /// Triggers and tables a move leaves on a schema (none once it ended either way).
    private static func moveLeftovers(_ schema: String, on url: DatabaseURL, logger: Logger) async throws -> Int {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
            try await c.query(
                """
                SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                        WHERE n.nspname = \(schema) AND t.tgname LIKE 'kt_move%')
                     + (SELECT count(*) FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = \(schema) AND r.relname = 'kt_move_changes')
                """, logger: logger
            ).first!.decode(0, as: Int.self)
        }
    }

    @Test(
        "the target pair's Qdrant stops during the copy: the graph stays active and writable on its source, nothing of the move is left on the source or in the target's databases, and once that Qdrant is back the move succeeds with every point"
    )
    func targetQdrantStops() async throws {
        let island = try QdrantLocalServer()
        try await island.start()
        defer { island.stop() }
        try await TestWorld.with(logger: logger) { world in
            var settings = world.settings
            settings.graphDatabases["island"] = GraphDatabaseConfig(graphDatabaseURL: world.externalGraph, writeDatabaseURL: world.externalWrite, qdrantURL: island.url)
            try await GraphRepository(world.controlPlane, logger: logger).createDatabaseConnection(name: "Island", configKey: "island")
            try await withGraphSystem(settings: settings, logger: logger) { system in
                let slug = TestEnvironment.uniqueName("mvqd")
                try await system.provisioner.createGraph(slug: slug, name: "Points")
                let worker = try await system.workerEngine(slug: slug, logger: logger)
                for index in 0..<30 { try await worker.createNode(concept: "Pointed \(index)", embedding: [1, Float(index), 0, 0, 0, 0, 0, 1]) }
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                let schema = "graph_" + slug

                let stopped = await #expect(throws: KTProvisionError.self) {
                    try await system.provisioner.moveGraph(slug: slug, toDatabase: "island") { event in
                        if event.phase == "copy-points" { island.stop() }
                    }
                }
                #expect(stopped?.code == .stepFailed && stopped?.message.contains("copy-points") == true, "\(String(describing: stopped))")
                let graph = try #require(try await GraphRepository(world.controlPlane, logger: logger).graph(slug: slug))
                #expect(graph.status == .active && graph.databaseConnectionID == nil && graph.moveTarget == nil)
                for url in [world.externalGraph, world.externalWrite] { #expect(try await TestEnvironment.schemaExists(schema, on: url) == false) }
                for url in [world.systemGraph, world.systemWrite] { #expect(try await Self.moveLeftovers(schema, on: url, logger: logger) == 0) }
                try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Written after the failure", embedding: [0, 1, 0, 0, 0, 0, 0, 1])

                // The Qdrant comes back with what the failed copy left there; the next move starts clean.
                try await island.start()
                let moved = try await system.provisioner.moveGraph(slug: slug, toDatabase: "island", grace: .zero)
                #expect(moved.status == .active && moved.databaseConnectionID != nil)
                let qdrant = try makeQdrantClient(url: island.url, timeout: .seconds(10), logger: logger)
                defer { qdrant.close() }
                #expect(try await qdrant.count(QdrantCollections(graphSlug: slug).nodes) == 31)
                #expect(try await Self.count("SELECT count(*) FROM write_nodes", schema: schema, on: world.externalWrite, logger: logger) == 31)
            }
        }
    }

    @Test(
        "in separate processes: kt load writes, kt-server serves reads, kt graphs move moves the graph to the external pair and back: every read answers 200, the load exits 0, and every acknowledged write is in both databases once"
    )
    func moveAcrossProcesses() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServerProcess.executable.path), "kt-server is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try CLITests.environment(world)
            let token = try await world.token(logger: logger)
            let slug = TestEnvironment.uniqueName("mvproc")
            let probe = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.provisioner.createGraph(slug: slug, name: "Across processes")
                let worker = try await system.workerEngine(slug: slug, logger: logger)
                _ = try await worker.createNodes((0..<2000).map { WorkerGraphEngine.NodeSpec(concept: "Bulk \($0)") })
                let probe = try await worker.createNode(concept: "Probe")
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                return probe.id
            }
            let server = try await ServerProcess(environment: environment)
            defer { server.stop() }

            // The writer: a process of its own, its output in files (no pipe to fill).
            let folder = FileManager.default.temporaryDirectory
            let output = folder.appendingPathComponent("kt-load-\(UUID().uuidString).out"), errors = folder.appendingPathComponent("kt-load-\(UUID().uuidString).err")
            for file in [output, errors] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
            defer { for file in [output, errors] { try? FileManager.default.removeItem(at: file) } }
            let load = Process()
            load.executableURL = CLITests.executable
            load.arguments = ["load", "--graph", slug, "--seconds", "12", "--prefix", "Written"]
            load.environment = environment
            load.standardOutput = try FileHandle(forWritingTo: output)
            load.standardError = try FileHandle(forWritingTo: errors)
            try load.run()
            let loadEnded = Task { await TestEnvironment.onThread { load.waitUntilExit() } }

            // The reader: the server, asked for one node until the moves are done.
            let reading = MoveLoad()
            let api = server.api
            async let reads: Void = {
                while !reading.stop.load(ordering: .relaxed), !Task.isCancelled {
                    do {
                        let reply = try await api.call("GET", "/api/v1/graphs/\(slug)/nodes/\(probe)", token: token)
                        if reply.status == 200 { reading.reads.add(1, ordering: .relaxed) } else { reading.readErrors.withLock { $0.append("\(reply.status) \(reply.text)") } }
                    } catch {
                        reading.readErrors.withLock { $0.append("\(error)") }
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }()

            try await Task.sleep(for: .seconds(1))
            let there = try await CLITests.kt(["graphs", "move", slug, "--to", "shared"], environment: environment)
            #expect(there.status == 0, "\(there.error)")
            try await Task.sleep(for: .seconds(1))
            let back = try await CLITests.kt(["graphs", "move", slug, "--to", "default"], environment: environment)
            #expect(back.status == 0, "\(back.error)")
            await loadEnded.value
            reading.stop.store(true, ordering: .relaxed)
            await reads

            let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? "", failures = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            #expect(load.terminationStatus == 0, "\(failures.prefix(500))")
            let acknowledged = printed.split(separator: "\n").compactMap { $0.hasPrefix("ok ") ? "Written \($0.dropFirst(3))" : nil }
            // How many depends on the machine's load (a loaded CI machine managed 6 in 12 s, most of
            // them paused by the moves); that each one is stored once is checked below.
            #expect(!acknowledged.isEmpty, "\(printed.suffix(200))")
            #expect(reading.readErrors.withLock { $0 }.isEmpty, "\(reading.readErrors.withLock { $0.prefix(3) })")
            // The reader kept reading (how often depends on the machine's load).
            #expect(reading.reads.load(ordering: .relaxed) >= 5)

            let schema = try SchemaName("graph_" + slug)
            _ = try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
            }
            for (url, table) in [(world.systemWrite, "write_nodes"), (world.systemGraph, "nodes")] {
                let concepts = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
                    try await c.query("SELECT concept FROM \(try TableName(validating: table, in: schema)) WHERE concept LIKE 'Written %'", logger: logger).rows.map {
                        try $0.decode(0, as: String.self)
                    }
                }
                #expect(concepts.sorted() == acknowledged.sorted(), "\(table): \(concepts.count) rows, \(acknowledged.count) acknowledged")
            }
            for url in [world.externalGraph, world.externalWrite] { #expect(try await TestEnvironment.schemaExists(schema.rawValue, on: url) == false) }
        }
    }
}
