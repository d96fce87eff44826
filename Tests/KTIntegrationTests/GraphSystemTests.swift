import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import ServiceLifecycle
import Testing

/// GraphSystem at the scale it exists for: many graphs on one pool per database, databases
/// behind PgBouncer in transaction mode, and several processes on one control plane.
@Suite("GraphSystem: pools per database, PgBouncer, several processes", .enabled(if: TestEnvironment.isEnabled))
struct GraphSystemTests {
    let logger = TestEnvironment.logger

    /// Creates `count` active graphs on the system pair straight through the repository and the
    /// migrator (no Qdrant collections: the reads under test never touch Qdrant), four at a time.
    func makeActiveGraphs(_ count: Int, prefix: String, world: TestWorld) async throws -> [String] {
        let slugs = (0..<count).map { "\(prefix)_\($0)" }
        let repository = GraphRepository(world.controlPlane, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<4 {
                group.addTask {
                    try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.systemGraph, prepared: .disabled), logger: logger) { graphDB in
                        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.systemWrite, prepared: .disabled), logger: logger) { writeDB in
                            for slug in slugs.enumerated().filter({ $0.offset % 4 == lane }).map(\.element) {
                                let graph = try await repository.create(slug: try GraphSlug(slug), name: slug)
                                try await Migrator.migrateGraph(schema: try SchemaName("graph_" + slug), graphDB: graphDB, writeDB: writeDB, logger: logger)
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

    /// Connections per database of the system cluster whose `application_name` is `application`.
    func connections(application: String, databases: [String], on url: DatabaseURL) async throws -> [String: Int] {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT datname::text, count(*) FROM pg_stat_activity WHERE application_name = \(application) AND datname = ANY(\(databases)) GROUP BY datname",
                logger: logger)
            return Dictionary(uniqueKeysWithValues: try rows.rows.map { row throws(KTDBError) in (try row.decode(0, as: String.self), try row.decode(1, as: Int.self)) })
        }
    }

    @Test("connection budget: 200 graphs on one pair, each read through kt-server; the server holds at most pool size + overflow connections per database")
    func connectionBudget() async throws {
        try await ServerTests().withServer(configure: { settings in
            settings.graphPool = PoolSettings(size: 3, maxOverflow: 2, timeout: .seconds(30), recycle: .seconds(600))
            settings.writePool = PoolSettings(size: 3, maxOverflow: 2, timeout: .seconds(30), recycle: .seconds(600))
        }) { f in
            let slugs = try await makeActiveGraphs(200, prefix: TestEnvironment.uniqueName("budget"), world: f.world)
            let databases = [f.world.systemGraph.database!, f.world.systemWrite.database!]
            // Every graph read, 16 requests at a time, and the graph list twice.
            try await withThrowingTaskGroup(of: Int.self) { group in
                var pending = slugs[...]
                func next() {
                    guard let slug = pending.popFirst() else { return }
                    group.addTask { try await f.api.call("GET", "/api/v1/graphs/\(slug)/nodes", token: f.admin).status }
                }
                for _ in 0..<16 { next() }
                while let status = try await group.next() {
                    #expect(status == 200)
                    next()
                }
            }
            let list = try await f.api.call("GET", "/api/v1/graphs", token: f.admin)
            #expect(list.status == 200)
            #expect(list.array.count == 201)
            #expect(list.array.allSatisfy { $0["node_count"] is Int })
            let held = try await connections(application: "kt-api", databases: databases, on: f.world.systemGraph)
            #expect((held[f.world.systemGraph.database!] ?? 0) >= 1)
            #expect((held[f.world.systemGraph.database!] ?? 0) <= 5, "graph-db: \(held)")
            #expect((held[f.world.systemWrite.database!] ?? 0) <= 5, "write-db: \(held)")
        }
    }

    /// `url` with the database of `fresh`: a fresh test database reached through a PgBouncer.
    static func through(_ bouncer: DatabaseURL, database fresh: DatabaseURL) -> DatabaseURL {
        var url = bouncer
        url.database = fresh.database
        return url
    }

    /// The `kt` environment of `world` with both write-dbs (and, when `graphThroughPooler`, the
    /// system graph-db) reached through PgBouncer in transaction mode.
    static func pooledEnvironment(_ world: TestWorld, graphThroughPooler: Bool) throws -> [String: String] {
        var environment = try CLITests.environment(world)
        let systemBouncer = try TestEnvironment.pgbouncerURL
        let externalBouncer = try TestEnvironment.url("KT_TEST_EXTERNAL_PGBOUNCER_URL")
        environment["WRITE_DATABASE_URL"] = through(systemBouncer, database: world.systemWrite).urlString(includingPassword: true)
        environment["WRITE_DB_PGBOUNCER"] = "true"
        if graphThroughPooler {
            environment["DATABASE_URL"] = through(systemBouncer, database: world.systemGraph).urlString(includingPassword: true)
            environment["DB_PGBOUNCER"] = "true"
        }
        let shared = world.settings.graphDatabases["shared"]!
        let databases: [String: [String: Any]] = [
            "shared": [
                "graph_database_url": shared.graphDatabaseURL.urlString(includingPassword: true),
                "write_database_url": through(externalBouncer, database: world.externalWrite).urlString(includingPassword: true),
                "write_pgbouncer": true,
                "qdrant_url": shared.qdrantURL ?? "",
            ]
        ]
        environment["GRAPH_DATABASES"] = String(decoding: try JSONSerialization.data(withJSONObject: databases), as: UTF8.self)
        return environment
    }

    /// The `(set, version)` rows of a schema's version table, in order.
    @Test(
        "PgBouncer in transaction mode before both write-dbs (and the graph-db): two kt processes migrating and provisioning 10 graphs at once; every graph active, every version table holds exactly its own migrations",
        arguments: [false, true])
    func pgbouncer(graphThroughPooler: Bool) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.executable.path), "kt is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try Self.pooledEnvironment(world, graphThroughPooler: graphThroughPooler)
            func both(_ a: [String], _ b: [String]) async throws {
                async let first = CLITests.kt(a, environment: environment)
                async let second = CLITests.kt(b, environment: environment)
                for result in try await [first, second] { #expect(result.status == 0, "\(result.error)") }
            }
            try await both(["migrate"], ["migrate"])
            let prefix = TestEnvironment.uniqueName("pgb")
            var slugs: [(slug: String, external: Bool)] = []
            for index in 0..<5 {
                let a = (slug: "\(prefix)_a\(index)", external: index % 2 == 0), b = (slug: "\(prefix)_b\(index)", external: index % 2 == 1)
                func create(_ graph: (slug: String, external: Bool)) -> [String] {
                    ["graphs", "create", "--slug", graph.slug, "--name", graph.slug] + (graph.external ? ["--database", "shared"] : [])
                }
                try await both(create(a), create(b))
                slugs += [a, b]
            }
            try await both(["migrate"], ["migrate"])

            let repository = GraphRepository(world.controlPlane, logger: logger)
            for graph in slugs {
                #expect(try await repository.graph(slug: graph.slug)?.status == .active, "\(graph.slug)")
                let schema = "graph_" + graph.slug
                #expect(try await TestEnvironment.schemaVersions(schema: schema, on: graph.external ? world.externalGraph : world.systemGraph) == TestEnvironment.expectedVersions([.graphData]))
                #expect(try await TestEnvironment.schemaVersions(schema: schema, on: graph.external ? world.externalWrite : world.systemWrite) == TestEnvironment.expectedVersions([.writeData]))
            }
            #expect(try await TestEnvironment.schemaVersions(schema: "public", on: world.systemGraph) == TestEnvironment.expectedVersions([.controlPlane, .graphData]))
            #expect(try await TestEnvironment.schemaVersions(schema: "public", on: world.systemWrite) == TestEnvironment.expectedVersions([.writeData]))

            // kt-server starts and serves on the same databases with no further setting.
            let token = try await world.token(logger: logger)
            let server = try await ServerProcess(environment: environment)
            defer { server.stop() }
            #expect(try await server.api.call("GET", "/api/v1/graphs", token: token).array.count == 11)
            for graph in slugs.prefix(2) {
                #expect(try await server.api.call("GET", "/api/v1/graphs/\(graph.slug)/nodes", token: token).status == 200)
            }

            try await TestEnvironment.dropCollections(global: slugs.filter { !$0.external }.map(\.slug), external: slugs.filter(\.external).map(\.slug))
        }
    }

    @Test(
        "two kt-server processes on one control plane: a second one starting while the first provisions leaves that graph to finish active; a retry on one is served by the other; a hard delete on one is 404 on the other within 2 s"
    )
    func twoServers() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServerProcess.executable.path), "kt-server is not built next to the tests")
        try await TestWorld.with(logger: logger) { world in
            let environment = try CLITests.environment(world)
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let token = try await world.token(logger: logger)
            let first = try await ServerProcess(environment: environment)
            defer { first.stop() }

            // 1. The first server provisions a graph on the external pair; its migration waits on
            //    the migrator's lock, held here. A second server starts meanwhile.
            let slow = TestEnvironment.uniqueName("slow")
            let lock = try await PostgresConnection.connect(configuration: TestEnvironment.connectionConfiguration(world.externalGraph), logger: logger)
            try await lock.execute(simple: "BEGIN", logger: logger)
            try await lock.query("SELECT pg_advisory_xact_lock(hashtext('kt-migrate'), hashtext(\("graph_" + slow)))", logger: logger)
            let creation = Task {
                try await first.api.call("POST", "/api/v1/graphs", token: token, body: ["slug": slow, "name": "Slow", "database_connection_config_key": "shared"])
            }
            let provisioning = try await TestEnvironment.waitUntil(.seconds(20)) { try await repository.graph(slug: slow)?.status == .provisioning }
            #expect(provisioning != nil)
            let second: ServerProcess
            do {
                second = try await ServerProcess(environment: environment)
            } catch {
                try? await lock.execute(simple: "ROLLBACK", logger: logger)
                await lock.close()
                throw error
            }
            defer { second.stop() }
            #expect(try await repository.graph(slug: slow)?.status == .provisioning, "the second server's startup took over a graph another live process is provisioning")
            try await lock.execute(simple: "COMMIT", logger: logger)
            await lock.close()
            let created = try await creation.value
            #expect(created.status == 201, "\(created.text)")
            #expect(try await repository.graph(slug: slow)?.status == .active)
            #expect(try await second.api.call("GET", "/api/v1/graphs/\(slow)/nodes", token: token).status == 200)

            // 2. A graph in error, retried on the first server, is served by the second.
            let failed = TestEnvironment.uniqueName("failed")
            let row = try await repository.create(slug: try GraphSlug(failed), name: "Failed", provisioningOwner: UUID())
            try await repository.update(id: row.id, status: .error)
            #expect(try await second.api.call("GET", "/api/v1/graphs/\(failed)/nodes", token: token).status == 503)
            #expect(try await first.api.call("POST", "/api/v1/graphs/\(failed)/retry-provision", token: token).status == 200)
            let served = try await TestEnvironment.waitUntil(.seconds(2)) { try await second.api.call("GET", "/api/v1/graphs/\(failed)/nodes", token: token).status == 200 }
            #expect(served != nil)

            // 3. A hard delete on the first: the second answers 404 within 2 s.
            #expect(try await first.api.call("DELETE", "/api/v1/graphs/\(slow)?hard=true", token: token).status == 204)
            let gone = try await TestEnvironment.waitUntil(.seconds(2)) { try await second.api.call("GET", "/api/v1/graphs/\(slow)/nodes", token: token).status == 404 }
            #expect(gone != nil)
            #expect(!first.output.contains(world.systemGraph.password?.revealedValue ?? "\u{0}"))

            try await TestEnvironment.dropCollections(global: [failed])
        }
    }

    @Test("a GraphSystem drops cached sessions changed by another process at its next poll of the change log: a hard delete by kt, a database connection changed in the control plane")
    func replicaInvalidation() async throws {
        try await TestWorld.with(logger: logger) { world in
            let environment = try CLITests.environment(world)
            let deleted = TestEnvironment.uniqueName("rdel"), moved = TestEnvironment.uniqueName("rmov")
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.provisioner.createGraph(slug: deleted, name: "Deleted")
                try await system.provisioner.createGraph(slug: moved, name: "Moved")
                #expect(try await system.sessions(slug: deleted).graph.slug == deleted)
                #expect(try await system.sessions(slug: moved).targets.connectionKey == GraphDatabases.defaultKey)

                // Another process hard-deletes one graph.
                let result = try await CLITests.kt(["graphs", "delete", deleted, "--hard"], environment: environment)
                #expect(result.status == 0, "\(result.error)")
                // The poll runs every changePollInterval; the bound is loose because the whole suite
                // shares two cores with the servers (the 1 s figure is a benchmark's business).
                let dropped = try await TestEnvironment.waitUntil(.seconds(10)) {
                    do {
                        _ = try await system.sessions(slug: deleted)
                        return false
                    } catch let error as KTProvisionError {
                        return error.code == .notFound
                    }
                }
                #expect(dropped != nil, "the deleted graph's cached sessions were still served")

                // Another process points the other graph at the external pair (as a move would).
                let shared = try #require(try await GraphRepository(world.controlPlane, logger: logger).databaseConnection(configKey: "shared"))
                try await world.controlPlane.query("UPDATE graphs SET database_connection_id = \(shared.id) WHERE slug = \(moved)", logger: logger)
                let rerouted = try await TestEnvironment.waitUntil(.seconds(10)) { try await system.sessions(slug: moved).targets.connectionKey == "shared" }
                #expect(rerouted != nil, "the moved graph was still routed to its old pair")
            }
            try await TestEnvironment.dropCollections(global: [moved])
        }
    }
}

extension GraphSystemTests {
    @Test("as a service, the system runs the pools it creates while running and shuts every one down on graceful shutdown")
    func lifecycle() async throws {
        try await TestWorld.with(logger: logger) { world in
            let system = try GraphSystem(settings: world.settings, logger: logger)
            let group = ServiceGroup(services: [system], gracefulShutdownSignals: [], logger: logger)
            let slug = TestEnvironment.uniqueName("life")
            let externalPool = try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                // The external pair's pools are created now, while the system runs.
                try await system.provisioner.createGraph(slug: slug, name: "Life", databaseKey: "shared")
                let sessions = try await system.sessions(slug: slug)
                try await sessions.graphSession.query("SELECT 1", logger: logger)
                #expect(system.poolStatistics.count == 4)
                #expect(sessions.graphSession.pool.statistics.idle == 1)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return sessions.graphSession.pool
            }
            #expect(externalPool.statistics.idle == 0)
            await #expect { try await externalPool.withConnection(logger: logger) { _ in } } throws: { ($0 as? KTDBError)?.code == .poolClosed }
            await #expect { _ = try await system.sessions(slug: "default") } throws: {
                ($0 as? KTProvisionError)?.code == .shutDown || ($0 as? KTDBError)?.code == .poolClosed
            }
            try await TestEnvironment.dropCollections(external: [slug])
        }
    }
}

extension GraphSystemTests {
    @Test(
        "readiness with a pair behind a silent network: the check names its graph-db and its Qdrant as down after its timeout, while the network is still silent, and the rest as up"
    )
    func readinessWithSilentPair() async throws {
        try await TestWorld.with(logger: logger) { world in
            let proxy = try TCPProxy(before: world.externalGraph)
            defer { proxy.stop() }
            let qdrant = try #require(URL(string: TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"] ?? ""))
            let qdrantProxy = try TCPProxy(targetPort: qdrant.port ?? 6333)
            defer { qdrantProxy.stop() }
            var settings = world.settings
            var silent = proxy.route(world.externalGraph)
            // Longer than the watchdog below: only cancelling the checks ends them sooner.
            silent.parameters["connect_timeout"] = "300"
            settings.qdrant.timeout = .seconds(300)
            settings.graphDatabases["shared"]?.graphDatabaseURL = silent
            settings.graphDatabases["shared"]?.qdrantURL = "http://127.0.0.1:\(qdrantProxy.port)"
            try await world.controlPlane.query("DELETE FROM database_connections WHERE config_key = 'broken'", logger: logger)
            proxy.freeze()
            qdrantProxy.freeze()
            try await withGraphSystem(settings: settings, logger: logger) { system in
                // Should a check outlive its timeout, it passes once the network is back.
                let watchdog = Watchdog(after: .seconds(90)) {
                    proxy.thaw()
                    qdrantProxy.thaw()
                }
                // Generous: the probes that answer must do so within it on a busy machine.
                let down = await system.unavailableComponents(timeout: .seconds(30), logger: logger)
                #expect(await watchdog.disarm() == false, "the check ended only once the network came back")
                #expect(down == ["Qdrant of 'shared'", "graph-db of 'shared'"])
                // The connection given up is still opening; the system's shutdown waits for it,
                // which a closed network ends at once.
                proxy.stop()
            }
        }
    }
}
