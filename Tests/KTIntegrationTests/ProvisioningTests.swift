import Foundation
import KTConfig
import KTDB
import KTProvision
import KTQdrant
import Logging
import Synchronization
import Testing

@Suite("Provisioning and routing (two PostgreSQL pairs, two Qdrant servers)", .enabled(if: TestEnvironment.isEnabled))
struct ProvisioningTests {
    let logger = TestEnvironment.logger

    typealias World = TestWorld

    /// A fresh world and a running graph system on its settings.
    func withWorld<T: Sendable>(_ body: (World, GraphSystem) async throws -> T) async throws -> T {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { try await body(world, $0) }
        }
    }

    func qdrant(_ variable: String) throws -> QdrantClient {
        try QdrantClient(configuration: .init(url: TestEnvironment.variables[variable] ?? ""), logger: logger)
    }

    @Test("a graph created against the external connection lives there: schemas, tables, collections; progress is reported step by step")
    func externalGraph() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let slug = TestEnvironment.uniqueName("ext")
            let events = Mutex<[ProvisioningEvent]>([])
            let user = UUID()
            try await world.controlPlane.query("INSERT INTO \"user\" (id, email) VALUES (\(user), \("owner@example.org"))", logger: logger)
            let graph = try await provisioner.createGraph(slug: slug, name: "External", databaseKey: "shared", createdBy: user) { event in
                events.withLock { $0.append(event) }
            }
            #expect(graph.status == .active)
            #expect(graph.databaseConnectionID != nil)
            let schema = "graph_" + slug
            #expect(try await TestEnvironment.schemaExists(schema, on: world.externalGraph))
            #expect(try await TestEnvironment.schemaExists(schema, on: world.externalWrite))
            #expect(try await TestEnvironment.schemaExists(schema, on: world.systemGraph) == false)
            #expect(try await TestEnvironment.schemaExists(schema, on: world.systemWrite) == false)

            let external = try qdrant("KT_TEST_EXTERNAL_QDRANT_URL")
            let system = try qdrant("KT_TEST_QDRANT_URL")
            defer { external.close(); system.close() }
            for name in QdrantCollections(graphSlug: slug).all {
                #expect(try await external.collectionExists(name))
                #expect(try await system.collectionExists(name) == false)
                try await external.deleteCollection(name)
            }
            let steps = events.withLock { $0 }.filter { $0.phase == .finished }.map(\.step)
            // Every step finished once; the collections and the two migrations overlap, but the
            // targets come first, the schemas before their migrations, and activation last.
            #expect(Set(steps) == [.resolveTargets, .createGraphSchema, .createWriteSchema, .migrateGraphSchema, .migrateWriteSchema, .ensureCollections, .activate])
            #expect(steps.count == 7 && steps.first == .resolveTargets && steps.last == .activate)
            func position(_ step: ProvisioningStep) -> Int { steps.firstIndex(of: step) ?? -1 }
            #expect(position(.createGraphSchema) < position(.migrateGraphSchema) && position(.createWriteSchema) < position(.migrateWriteSchema))
            let repository = GraphRepository(world.controlPlane, logger: logger)
            #expect(try await repository.memberRole(graphID: graph.id, userID: user) == .admin)

            // Its sessions read and write there.
            let targets = try await provisioner.targets(for: graph)
            #expect(targets.writeDatabaseURL == world.externalWrite)
            try await TestEnvironment.withPool(targets.writeDatabaseURL) { pool in
                let session = DatabaseSession(pool: pool, schema: targets.schema)
                try await session.query("INSERT INTO write_nodes (key, node_uuid, concept) VALUES (\("k"), \(UUID()), \("Concept"))", logger: logger)
                #expect(try await session.query("SELECT count(*) FROM write_nodes", logger: logger).first?.decode(0, as: Int.self) == 1)
            }
        }
    }

    @Test("no key or 'default' provisions into the system databases", arguments: [nil, "default"] as [String?])
    func systemGraph(key: String?) async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let slug = TestEnvironment.uniqueName("sys")
            let graph = try await provisioner.createGraph(slug: slug, name: "System", databaseKey: key)
            #expect(graph.databaseConnectionID == nil)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.systemGraph))
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.systemWrite))
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalGraph) == false)
            let system = try qdrant("KT_TEST_QDRANT_URL")
            defer { system.close() }
            for name in QdrantCollections(graphSlug: slug).all {
                #expect(try await system.collectionExists(name))
                try await system.deleteCollection(name)
            }
        }
    }

    @Test("bad input: invalid slug, reserved slug, unknown key, taken slug")
    func badInput() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            func code(_ body: () async throws -> Void) async -> KTProvisionError.Code? {
                do { try await body(); return nil } catch let error as KTProvisionError { return error.code } catch { return nil }
            }
            #expect(await code { try await provisioner.createGraph(slug: "Bad-Slug", name: "x") } == .invalidSlug)
            #expect(await code { try await provisioner.createGraph(slug: "default", name: "x") } == .reservedSlug)
            #expect(await code { try await provisioner.createGraph(slug: "fine_slug", name: "x", databaseKey: "nowhere") } == .unknownConnection)
            let slug = TestEnvironment.uniqueName("dup")
            try await provisioner.createGraph(slug: slug, name: "First")
            #expect(await code { try await provisioner.createGraph(slug: slug, name: "Second") } == .conflict)
            let system = try qdrant("KT_TEST_QDRANT_URL")
            defer { system.close() }
            for name in QdrantCollections(graphSlug: slug).all { try await system.deleteCollection(name) }
        }
    }

    @Test("two concurrent creations of one slug: exactly one succeeds, the other gets a conflict")
    func concurrentCreation() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let slug = TestEnvironment.uniqueName("race")
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            try await provisioner.createGraph(slug: slug, name: "Race")
                            return "ok"
                        } catch let error as KTProvisionError {
                            return error.code.description
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.sorted() == ["conflict", "ok"])
            let system = try qdrant("KT_TEST_QDRANT_URL")
            defer { system.close() }
            for name in QdrantCollections(graphSlug: slug).all { try await system.deleteCollection(name) }
        }
    }

    @Test("a failure leaves status 'error' and drops nothing; retry after the database is reachable converges")
    func retryAfterFailure() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let slug = TestEnvironment.uniqueName("retry")
            do {
                try await provisioner.createGraph(slug: slug, name: "Retry", databaseKey: "broken")
                Issue.record("expected a failure")
            } catch let error as KTProvisionError {
                #expect(error.code == .stepFailed)
                #expect(error.step == .createGraphSchema)
            }
            let repository = GraphRepository(world.controlPlane, logger: logger)
            #expect(try await repository.graph(slug: slug)?.status == .error)
            do {
                try await provisioner.retry(slug: slug)
                Issue.record("expected a second failure while the database is unreachable")
            } catch let error as KTProvisionError {
                #expect(error.code == .stepFailed)
            }
            // The operator fixes the configuration (the database is reachable now): retry converges.
            var fixed = world.settings
            fixed.graphDatabases["broken"] = world.settings.graphDatabases["shared"]
            let graph = try await withGraphSystem(settings: fixed, logger: logger) { try await $0.provisioner.retry(slug: slug) }
            #expect(graph.status == .active)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalGraph))
            do {
                try await provisioner.retry(slug: slug)
                Issue.record("an active graph cannot be retried")
            } catch let error as KTProvisionError {
                #expect(error.code == .invalidState)
            }
            let external = try qdrant("KT_TEST_EXTERNAL_QDRANT_URL")
            defer { external.close() }
            for name in QdrantCollections(graphSlug: slug).all { try await external.deleteCollection(name) }
        }
    }

    @Test("the graph system routes a graph's sessions to its databases and Qdrant on pools per database, single-flight, with invalidate and clear errors")
    func resolver() async throws {
        try await withWorld { world, system in
            let slug = TestEnvironment.uniqueName("routed")
            let onSystem = TestEnvironment.uniqueName("onsys")
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let graph = try await system.provisioner.createGraph(slug: slug, name: "Routed", databaseKey: "shared")
                try await system.provisioner.createGraph(slug: onSystem, name: "On the system pair")
                let resolver = system.resolver
                let all = try await withThrowingTaskGroup(of: GraphSessions.self) { group in
                    for _ in 0..<4 { group.addTask { try await resolver.resolve(slug: slug) } }
                    return try await group.reduce(into: [GraphSessions]()) { $0.append($1) }
                }
                #expect(Set(all.map { ObjectIdentifier($0.writeSession.pool) }).count == 1)
                let sessions = all[0]
                #expect(sessions.collections.facts == "\(slug)__facts")
                #expect(sessions.writeSession.schema.rawValue == "graph_" + slug)
                #expect(QdrantClient.sameServer(sessions.qdrant.baseURL.absoluteString, TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"] ?? ""))
                try await sessions.writeSession.query("INSERT INTO write_nodes (key, node_uuid, concept) VALUES (\("routed"), \(UUID()), \("Routed"))", logger: logger)
                try await sessions.graphSession.query("INSERT INTO nodes (id, concept) VALUES (\(UUID()), \("Routed"))", logger: logger)
                // The rows are in the external databases, in the graph's schema.
                for (url, table) in [(world.externalWrite, "write_nodes"), (world.externalGraph, "nodes")] {
                    let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) {
                        try await $0.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \"graph_\(slug)\".\(table)"), logger: logger).first!.decode(0, as: Int.self)
                    }
                    #expect(count == 1)
                }
                // The default graph and a graph without a connection share the system pools.
                let defaultSessions = try await system.sessions(slug: "default")
                #expect(defaultSessions.writeSession.pool === system.systemWritePool)
                #expect(defaultSessions.graphSession.pool === system.systemGraphPool)
                #expect(defaultSessions.collections == .defaultGraph)
                let systemGraph = try await system.sessions(slug: onSystem)
                #expect(systemGraph.writeSession.pool === system.systemWritePool && systemGraph.graphSession.pool === system.systemGraphPool)
                #expect(systemGraph.writeSession.schema.rawValue == "graph_" + onSystem)
                // The external pair has one pool per database: 2 system + 2 external.
                #expect(system.poolStatistics.count == 4)

                await system.invalidate(graphID: graph.id)
                let again = try await system.sessions(graphID: graph.id)
                #expect(again.writeSession.pool === sessions.writeSession.pool)  // pools outlive a graph's cached sessions
                #expect(try await resolver.listActiveGraphs().map(\.slug).contains(slug))

                do {
                    _ = try await system.sessions(slug: "no_such_graph")
                    Issue.record("expected notFound")
                } catch let error as KTProvisionError {
                    #expect(error.code == .notFound)
                }
            }
            // A process whose settings lack the connection key gets an error naming the variables.
            var missing = world.settings
            missing.graphDatabases["shared"] = nil
            try await withGraphSystem(settings: missing, logger: logger) { other in
                do {
                    _ = try await other.sessions(slug: slug)
                    Issue.record("expected unknownConnection")
                } catch let error as KTProvisionError {
                    #expect(error.code == .unknownConnection)
                    #expect(error.message.contains("EXTRA_DB_SHARED_GRAPH_HOST"))
                }
            }
            let external = try qdrant("KT_TEST_EXTERNAL_QDRANT_URL")
            defer { external.close() }
            for name in QdrantCollections(graphSlug: slug).all { try await external.deleteCollection(name) }
            let global = try qdrant("KT_TEST_QDRANT_URL")
            defer { global.close() }
            for name in QdrantCollections(graphSlug: onSystem).all { try await global.deleteCollection(name) }
        }
    }

    @Test("startup: migrates every active graph wherever it lives, recovers provisioning whose provisioner is gone (not one still alive), refuses a 'default' connection row")
    func startup() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let slug = TestEnvironment.uniqueName("boot")
            try await provisioner.createGraph(slug: slug, name: "Boot", databaseKey: "shared")
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let stuck = try await repository.create(slug: try GraphSlug(TestEnvironment.uniqueName("stuck")), name: "Stuck", provisioningOwner: UUID())
            // Its provisioner stopped sending heartbeats a minute ago (a lease is 30 s).
            try await world.controlPlane.query("UPDATE graphs SET provisioning_heartbeat_at = now() - interval '1 minute' WHERE id = \(stuck.id)", logger: logger)
            // Another live process is provisioning this one (its heartbeat is fresh): left alone.
            let alive = try await repository.create(slug: try GraphSlug(TestEnvironment.uniqueName("alive")), name: "Alive", provisioningOwner: UUID())
            // Drop the external graph's write schema: startup must recreate and migrate it there.
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(world.externalWrite), logger: logger) {
                try await $0.execute(simple: "DROP SCHEMA \"graph_\(slug)\" CASCADE", logger: logger)
            }
            let report = try await system.prepare()
            #expect(report.migratedGraphs == [slug])
            #expect(report.recoveredGraphs == [stuck.slug])
            #expect(report.appliedMigrations >= 1)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalWrite))
            #expect(try await repository.graph(id: stuck.id)?.status == .error)
            #expect(try await repository.graph(id: alive.id)?.status == .provisioning)

            // A control plane written by the original system may hold a 'default' row: refuse to start.
            try await world.controlPlane.query("ALTER TABLE database_connections DROP CONSTRAINT ck_database_connections_not_default", logger: logger)
            try await world.controlPlane.query("INSERT INTO database_connections (id, name, config_key) VALUES (\(UUID()), \("Legacy"), \("default"))", logger: logger)
            do {
                _ = try await system.prepare()
                Issue.record("expected a refusal")
            } catch let error as KTProvisionError {
                #expect(error.code == .invalidState)
                #expect(error.message.contains("Legacy"))
            }
            let external = try qdrant("KT_TEST_EXTERNAL_QDRANT_URL")
            defer { external.close() }
            for name in QdrantCollections(graphSlug: slug).all { try await external.deleteCollection(name) }
        }
    }

    @Test("delete: soft keeps the slug taken; hard drops schemas and collections and frees the slug; the default graph cannot be deleted")
    func delete() async throws {
        try await withWorld { world, system in
            let provisioner = system.provisioner
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let slug = TestEnvironment.uniqueName("gone")
            try await provisioner.createGraph(slug: slug, name: "Gone", databaseKey: "shared")
            try await provisioner.deleteGraph(slug: slug, hard: false)
            #expect(try await repository.graph(slug: slug)?.status == .deleted)
            do {
                try await provisioner.createGraph(slug: slug, name: "Again")
                Issue.record("a soft-deleted slug stays taken")
            } catch let error as KTProvisionError {
                #expect(error.code == .conflict)
            }
            try await provisioner.deleteGraph(slug: slug, hard: true)
            #expect(try await repository.graph(slug: slug) == nil)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalGraph) == false)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalWrite) == false)
            let external = try qdrant("KT_TEST_EXTERNAL_QDRANT_URL")
            defer { external.close() }
            for name in QdrantCollections(graphSlug: slug).all { #expect(try await external.collectionExists(name) == false) }
            // The slug is free again.
            try await provisioner.createGraph(slug: slug, name: "Reborn", databaseKey: "shared")
            try await provisioner.deleteGraph(slug: slug, hard: true)
            do {
                try await provisioner.deleteGraph(slug: "default", hard: true)
                Issue.record("the default graph cannot be deleted")
            } catch let error as KTProvisionError {
                #expect(error.code == .invalidState)
            }
        }
    }
}
