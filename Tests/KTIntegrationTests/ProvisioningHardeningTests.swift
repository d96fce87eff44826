import Foundation
import KTConfig
import KTDB
import KTProvision
import KTQdrant
import Logging
import Testing

/// Provisioning under races and failures (issue 17, items 12 to 17), on real servers.
@Suite("Provisioning hardening: activation, concurrent retries, deletes while provisioning, takeover, hard delete", .enabled(if: TestEnvironment.isEnabled))
struct ProvisioningHardeningTests {
    let logger = TestEnvironment.logger

    func withWorld<T: Sendable>(_ body: (TestWorld, GraphSystem) async throws -> T) async throws -> T {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { try await body(world, $0) }
        }
    }

    /// The code of the `KTProvisionError` `body` throws, or `nil` when it throws nothing.
    func code(_ body: () async throws -> Void) async -> KTProvisionError.Code? {
        do {
            try await body()
            return nil
        } catch let error as KTProvisionError {
            return error.code
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    func dropCollections(_ slug: String, external: Bool = false) async throws {
        try await TestEnvironment.dropCollections(global: external ? [] : [slug], external: external ? [slug] : [])
    }

    @Test("a soft delete that lands while the graph provisions stays: activation moves only provisioning to active (item 13)")
    func activationOnlyFromProvisioning() async throws {
        try await withWorld { world, system in
            let slug = TestEnvironment.uniqueName("act")
            let controlPlane = world.controlPlane, logger = self.logger
            // When the migrations start, something else marks the graph deleted (as a soft delete
            // on another process did before deletes of provisioning graphs were refused).
            let flipped = await code {
                try await system.provisioner.createGraph(slug: slug, name: "Flip") { event in
                    guard event.step == .migrateGraphSchema, event.phase == .started else { return }
                    Task {
                        try await controlPlane.query("UPDATE graphs SET status = 'deleted' WHERE slug = \(slug)", logger: logger)
                    }
                }
            }
            #expect(flipped == .stepFailed)
            #expect(try await GraphRepository(world.controlPlane, logger: logger).graph(slug: slug)?.status == .deleted)
            try await dropCollections(slug)
        }
    }

    @Test("two concurrent retries: one provisions, the other gets conflict (409 over HTTP); the graph ends active with its creator as admin (item 14)")
    func concurrentRetries() async throws {
        try await withWorld { world, system in
            let slug = TestEnvironment.uniqueName("rty")
            let users = UserRepository(world.controlPlane, logger: logger)
            let creator = try await users.createUser(email: "creator@example.org")
            #expect(await code { try await system.provisioner.createGraph(slug: slug, name: "R", databaseKey: "broken", createdBy: creator.id) } == .stepFailed)
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let shared = try #require(try await repository.databaseConnection(configKey: "shared"))
            try await world.controlPlane.query("UPDATE graphs SET database_connection_id = \(shared.id) WHERE slug = \(slug)", logger: logger)
            let provisioner = system.provisioner
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            try await provisioner.retry(slug: slug)
                            return "ok"
                        } catch let error as KTProvisionError {
                            return error.code.description
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.sorted() == ["conflict", "ok"])
            let graph = try #require(try await repository.graph(slug: slug))
            #expect(graph.status == .active)
            #expect(try await repository.memberRole(graphID: graph.id, userID: creator.id) == .admin)
            try await dropCollections(slug, external: true)
        }
    }

    @Test("a graph being provisioned cannot be deleted (conflict); a retry takes it over only once its provisioner stopped sending heartbeats (items 16, 17)")
    func provisioningGraphs() async throws {
        try await withWorld { world, system in
            let slug = TestEnvironment.uniqueName("prv")
            let repository = GraphRepository(world.controlPlane, logger: logger)
            // A row whose provisioner (another process) is alive: its heartbeat is fresh.
            let row = try await repository.create(slug: try GraphSlug(slug), name: "Provisioning", provisioningOwner: UUID())
            #expect(row.status == .provisioning)
            #expect(await code { try await system.provisioner.deleteGraph(slug: slug, hard: false) } == .conflict)
            #expect(await code { try await system.provisioner.deleteGraph(slug: slug, hard: true) } == .conflict)
            #expect(await code { try await system.provisioner.retry(slug: slug) } == .conflict)
            #expect(try await repository.graph(slug: slug)?.status == .provisioning)
            // Its process lost the control plane (or died): no heartbeat for longer than the lease.
            try await world.controlPlane.query(
                "UPDATE graphs SET provisioning_heartbeat_at = now() - interval '10 minutes' WHERE slug = \(slug)", logger: logger)
            let taken = try await system.provisioner.retry(slug: slug)
            #expect(taken.status == .active)
            #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.systemGraph))
            try await system.provisioner.deleteGraph(slug: slug, hard: true)
            #expect(try await repository.graph(slug: slug) == nil)
        }
    }

    @Test("a hard delete drops only graph_<slug>: a row naming another graph's schema drops nothing (item 15)")
    func hardDeleteChecksTheSchema() async throws {
        try await withWorld { world, system in
            let victim = TestEnvironment.uniqueName("vic"), other = TestEnvironment.uniqueName("oth")
            for slug in [victim, other] { try await system.provisioner.createGraph(slug: slug, name: slug) }
            try await world.controlPlane.query("UPDATE graphs SET schema_name = \("graph_" + victim) WHERE slug = \(other)", logger: logger)
            #expect(await code { try await system.provisioner.deleteGraph(slug: other, hard: true) } == .invalidState)
            #expect(try await TestEnvironment.schemaExists("graph_" + victim, on: world.systemGraph))
            #expect(try await TestEnvironment.schemaExists("graph_" + victim, on: world.systemWrite))
            #expect(try await GraphRepository(world.controlPlane, logger: logger).graph(slug: other)?.status == .active)
            try await dropCollections(victim)
            try await dropCollections(other)
        }
    }

    @Test("a hard delete that cannot reach the pair's Qdrant leaves the graph deleted with the reason, never active without schemas; run again it finishes (item 12)")
    func hardDeleteResumes() async throws {
        try await withWorld { world, system in
            let slug = TestEnvironment.uniqueName("hrd")
            try await system.provisioner.createGraph(slug: slug, name: "Hard", databaseKey: "shared")
            var unreachable = world.settings
            unreachable.graphDatabases["shared"]?.qdrantURL = "http://127.0.0.1:\(try QdrantLocalServer.freePort())"
            let failed = try await withGraphSystem(settings: unreachable, logger: logger) { other in
                await code { try await other.provisioner.deleteGraph(slug: slug, hard: true) }
            }
            #expect(failed == .stepFailed)
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let stopped = try #require(try await repository.graph(slug: slug))
            #expect(stopped.status == .deleted)
            #expect(stopped.provisioningError?.contains("drop-collections") == true)
            // Resumed where the Qdrant answers: everything is gone and the slug is free.
            try await system.provisioner.deleteGraph(slug: slug, hard: true)
            #expect(try await repository.graph(slug: slug) == nil)
            #expect(try await !TestEnvironment.schemaExists("graph_" + slug, on: world.externalGraph))
            let external = try QdrantClient(configuration: .init(url: TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"] ?? ""), logger: logger)
            defer { external.close() }
            for name in QdrantCollections(graphSlug: slug).all { #expect(try await !external.collectionExists(name)) }
        }
    }
}
