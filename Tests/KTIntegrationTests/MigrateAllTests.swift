import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Testing

/// Migrate-all over many graphs on several pairs, one of them unreachable, through `kt migrate`
/// and kt-server as processes.
@Suite("Migrate-all (kt migrate, server startup)", .enabled(if: TestEnvironment.isEnabled))
struct MigrateAllTests {
    let logger = TestEnvironment.logger

    /// The `kt` environment of `world` with every configured pair (`shared` and the unreachable `broken`).
    static func environment(_ world: TestWorld) throws -> [String: String] {
        var environment = try CLITests.environment(world)
        var databases: [String: [String: String]] = [:]
        for (key, entry) in world.settings.graphDatabases {
            databases[key] = [
                "graph_database_url": entry.graphDatabaseURL.urlString(includingPassword: true),
                "write_database_url": entry.writeDatabaseURL.urlString(includingPassword: true),
                "qdrant_url": entry.qdrantURL ?? "",
            ]
        }
        environment["GRAPH_DATABASES"] = String(decoding: try JSONSerialization.data(withJSONObject: databases), as: UTF8.self)
        return environment
    }

    /// A fresh world whose control plane and default graph `kt migrate` set up, with the `kt`
    /// environment of every pair.
    func withMigratedWorld(_ body: (TestWorld, [String: String]) async throws -> Void) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable.path), "kt is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.environment(world)
            #expect(try await CLITests.kt(["migrate"], environment: environment).status == 0)
            try await body(world, environment)
        }
    }

    /// Active graph rows whose schemas are not migrated yet (as after an upgrade that brought new
    /// migrations), on the pair `key` (`nil`: the system pair).
    func unmigratedGraphs(_ count: Int, prefix: String, key: String?, world: TestWorld) async throws -> [Graph] {
        let repository = GraphRepository(world.controlPlane, logger: logger)
        let connection = try await key.asyncMap { try await repository.databaseConnection(configKey: $0) }
        var graphs: [Graph] = []
        for index in 0..<count {
            let graph = try await repository.create(slug: try GraphSlug("\(prefix)_\(index)"), name: "\(prefix) \(index)", databaseConnectionID: connection??.id)
            graphs.append(try #require(try await repository.update(id: graph.id, status: .active)))
        }
        return graphs
    }

    @Test(
        "kt migrate: graphs on the system and external pairs reach head, a graph on an unreachable pair fails alone (listed, exit 1); kt-server then starts, serves the others and answers 503 with the reason for it"
    )
    func unreachablePair() async throws {
        try await withMigratedWorld { world, environment in
            let prefix = TestEnvironment.uniqueName("mig")
            let onSystem = try await unmigratedGraphs(5, prefix: prefix + "_s", key: nil, world: world)
            let onShared = try await unmigratedGraphs(3, prefix: prefix + "_x", key: "shared", world: world)
            let onBroken = try await unmigratedGraphs(1, prefix: prefix + "_b", key: "broken", world: world)

            let run = try await CLITests.kt(["migrate"], environment: environment)
            #expect(run.status == 1)
            #expect(run.error.contains("1 graph(s) could not be migrated"))
            let broken = onBroken[0].slug
            #expect(run.output.contains("failed graphs (1):"))
            #expect(run.output.contains("  \(broken) (broken): "))
            #expect(run.output.contains("[9/9]"), "plain progress lines when stdout is not a terminal: \(run.output)")
            #expect(!run.output.contains(world.systemGraph.password?.revealedValue ?? "\u{0}"))
            for graph in onSystem + onShared {
                #expect(run.output.contains("\(graph.slug) (\(onShared.contains(graph) ? "shared" : "default")): "))
                let external = onShared.contains(graph)
                #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: external ? world.externalGraph : world.systemGraph) == TestEnvironment.expectedVersions([.graphData]))
                #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: external ? world.externalWrite : world.systemWrite) == TestEnvironment.expectedVersions([.writeData]))
            }
            let repository = GraphRepository(world.controlPlane, logger: logger)
            #expect(try await repository.graph(slug: broken)?.schemaError?.contains("graph-db") == true)
            #expect(try await repository.graph(slug: onSystem[0].slug)?.schemaError == nil)

            // Nothing left to do but the unreachable graph: everything else is up to date.
            let again = try await CLITests.kt(["migrate"], environment: environment)
            #expect(again.status == 1)
            #expect(again.output.components(separatedBy: ": up to date").count - 1 == 8)

            // The server starts all the same and serves every graph but that one.
            let token = try await world.token(logger: logger)
            let server = try await ServerProcess(environment: environment)
            defer { server.stop() }
            #expect(try await server.api.call("GET", "/api/v1/graphs/\(onShared[0].slug)/nodes", token: token).status == 200)
            let unavailable = try await server.api.call("GET", "/api/v1/graphs/\(broken)/nodes", token: token)
            #expect(unavailable.status == 503)
            #expect(unavailable.detail?.contains("not migrated") == true)
        }
    }

    @Test("kt migrate killed mid-run and run again: every graph reaches head, no migration applied twice")
    func killedAndRerun() async throws {
        try await withMigratedWorld { world, environment in
            let graphs = try await unmigratedGraphs(24, prefix: TestEnvironment.uniqueName("kill"), key: nil, world: world)
            for delay in [300, 900] {
                let process = Process()
                process.executableURL = CLITests.executable
                process.arguments = ["migrate"]
                process.environment = environment
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                try await Task.sleep(for: .milliseconds(delay))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            let rerun = try await CLITests.kt(["migrate"], environment: environment)
            #expect(rerun.status == 0, "\(rerun.error)")
            for graph in graphs {
                #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: world.systemGraph) == TestEnvironment.expectedVersions([.graphData]))
                #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: world.systemWrite) == TestEnvironment.expectedVersions([.writeData]))
            }
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

extension MigrateAllTests {
    @Test("status: kt graphs status and GET …/status give the database, both schema versions against head, the sync lag and the dead letters; an unreachable pair is a problem, not an error")
    func status() async throws {
        try await withMigratedWorld { world, environment in
            let slug = TestEnvironment.uniqueName("stat")
            #expect(try await CLITests.kt(["graphs", "create", "--slug", slug, "--name", "Stat", "--database", "shared"], environment: environment).status == 0)
            let down = try await unmigratedGraphs(1, prefix: TestEnvironment.uniqueName("sdown"), key: "broken", world: world)[0]
            // One change not yet synced, and one dead letter.
            let before = Date()
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                _ = try await system.workerEngine(slug: slug, logger: logger).createNode(concept: "Unsynced")
                try await system.sessions(slug: slug).writeSession.query(
                    "INSERT INTO sync_failures (id, table_name, record_key, status, graph_slug) VALUES (\(UUID()), 'write_nodes', 'x', 'abandoned', \(slug))", logger: logger)
            }
            let text = try await CLITests.kt(["graphs", "status", slug, "--json"], environment: environment)
            #expect(text.status == 0, "\(text.error)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(text.output.utf8)) as? [String: Any])
            #expect(report["database"] as? String == "shared")
            let graphSchema = try #require(report["graph_schema"] as? [String: Any]), writeSchema = try #require(report["write_schema"] as? [String: Any])
            #expect(graphSchema["at_head"] as? Bool == true && graphSchema["version"] as? Int == MigrationSet.graphData.migrations.map(\.version).max())
            #expect(writeSchema["at_head"] as? Bool == true && writeSchema["version"] as? Int == MigrationSet.writeData.migrations.map(\.version).max())
            let sync = try #require(report["sync"] as? [String: Any])
            #expect((sync["lag_seconds"] as? Double ?? 0) > 0)
            #expect((sync["lag_seconds"] as? Double ?? .infinity) < Date().timeIntervalSince(before) + 1)
            #expect(sync["dead_letters"] as? Int == 1)

            // All graphs as a table; the unreachable one is listed with its problem.
            let table = try await CLITests.kt(["graphs", "status"], environment: environment)
            #expect(table.status == 0, "\(table.error)")
            #expect(table.output.contains("\(slug)\tactive\tshared\t"))
            #expect(table.output.contains("\(down.slug)\tactive\tbroken\t?\t?"))

            // The same over HTTP, for superusers; after a sync the lag is 0.
            #expect(try await CLITests.kt(["sync", "--graph", slug, "--once"], environment: environment).status == 0)
            let token = try await world.token(logger: logger), plainToken = try await world.token(email: "p@example.org", superuser: false, logger: logger)
            let server = try await ServerProcess(environment: environment)
            defer { server.stop() }
            let reply = try await server.api.call("GET", "/api/v1/graphs/\(slug)/status", token: token)
            #expect(reply.status == 200)
            #expect((reply.object["sync"] as? [String: Any])?["lag_seconds"] as? Double == 0)
            #expect(try await server.api.call("GET", "/api/v1/graphs/\(slug)/status", token: plainToken).status == 404)  // not a member: the graph is not visible
            let broken = try await server.api.call("GET", "/api/v1/graphs/\(down.slug)/status", token: token)
            #expect(broken.status == 200)
            #expect((broken.object["problems"] as? [String])?.isEmpty == false)
            try await TestEnvironment.dropCollections(external: [slug])
        }
    }
}

extension MigrateAllTests {
    /// `world`'s settings with a pair `flaky`: the external cluster's databases reached through
    /// `proxy`, registered in the control plane.
    func flakyPair(_ world: TestWorld, through proxy: TCPProxy) async throws -> Settings {
        var settings = world.settings
        var graphURL = world.externalGraph, writeURL = world.externalWrite
        graphURL.port = proxy.port
        writeURL.port = proxy.port
        settings.graphDatabases["flaky"] = GraphDatabaseConfig(graphDatabaseURL: graphURL, writeDatabaseURL: writeURL, qdrantURL: TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"])
        try await GraphRepository(world.controlPlane, logger: logger).createDatabaseConnection(name: "Flaky", configKey: "flaky")
        return settings
    }

    @Test("a pair stopped during migrate-all: its graphs not yet done fail with the reason, the others reach head, the run ends; with the pair back, the next run brings every graph to head")
    func pairStoppedDuringMigrateAll() async throws {
        try await TestWorld.with(logger: logger) { world in
            let proxy = try TCPProxy(targetPort: world.externalGraph.port ?? 5432)
            defer { proxy.stop() }
            let settings = try await flakyPair(world, through: proxy)
            let prefix = TestEnvironment.uniqueName("stop")
            try await withGraphSystem(settings: settings, logger: logger) { system in
                _ = try await system.prepare()
                let onSystem = try await unmigratedGraphs(6, prefix: prefix + "_s", key: nil, world: world)
                let onFlaky = try await unmigratedGraphs(12, prefix: prefix + "_f", key: "flaky", world: world)
                let report = try await system.prepare { progress in
                    if progress.outcome.database == "flaky" { proxy.stop() }  // the pair goes down after its first graph
                }
                let failed = Set(report.failedGraphs.map(\.slug))
                #expect(!failed.isEmpty)
                #expect(failed.isSubset(of: Set(onFlaky.map(\.slug))))
                #expect(report.failedGraphs.allSatisfy { if case .failed(let reason) = $0.result { reason.contains("flaky") || reason.contains("-db ") } else { false } })
                for graph in onSystem {
                    #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: world.systemGraph) == TestEnvironment.expectedVersions([.graphData]))
                }
                // The pair is back: the next run converges.
                try proxy.start()
                let again = try await system.prepare()
                #expect(again.failedGraphs.isEmpty, "\(again.failedGraphs)")
                for graph in onFlaky {
                    #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: world.externalGraph) == TestEnvironment.expectedVersions([.graphData]))
                    #expect(try await TestEnvironment.schemaVersions(schema: graph.schemaName, on: world.externalWrite) == TestEnvironment.expectedVersions([.writeData]))
                }
                #expect(try await GraphRepository(world.controlPlane, logger: logger).graphs(ids: onFlaky.map(\.id)).allSatisfy { $0.schemaError == nil })
            }
        }
    }
}
