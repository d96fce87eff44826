import Foundation
import KTDB
import Logging
import Testing

@testable import KTProvision

@Suite("GraphSessionResolver: single-flight in the caller's task (real PostgreSQL)")
struct ResolverCancellationTests {
    let logger = TestEnvironment.logger

    @Test("a cancelled first caller stops its own build; a caller waiting for it builds again and gets the sessions")
    func cancelledLeader() async throws {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let slug = TestEnvironment.uniqueName("lead")
                let graph = try await system.provisioner.createGraph(slug: slug, name: "Leader")
                let resolver = system.resolver
                await resolver.invalidateAll()

                // The graphs table locked: the first build's read of the graph row waits.
                let lock = try await PostgresConnection.connect(configuration: TestEnvironment.connectionConfiguration(world.systemGraph), logger: logger)
                try await lock.execute(simple: "BEGIN", logger: logger)
                try await lock.execute(simple: "LOCK TABLE graphs IN ACCESS EXCLUSIVE MODE", logger: logger)
                let leaderEnded = Counter()
                let leader = Task {
                    defer { leaderEnded.increment() }
                    return try await resolver.resolve(graphID: graph.id)
                }
                #expect(try await TestEnvironment.waitUntil(.seconds(60)) { await resolver.waiting(for: graph.id) == 0 } != nil)
                let follower = Task { try await resolver.resolve(graphID: graph.id) }
                #expect(try await TestEnvironment.waitUntil(.seconds(60)) { await resolver.waiting(for: graph.id) == 1 } != nil)

                // Cancelled, the leader ends while the lock is still held: it waited for no one.
                leader.cancel()
                #expect(try await TestEnvironment.waitUntil(.seconds(30)) { leaderEnded.value == 1 } != nil)
                // The follower now leads a build of its own, which waits for the lock in turn.
                #expect(try await TestEnvironment.waitUntil(.seconds(60)) { await resolver.waiting(for: graph.id) == 0 } != nil)
                try await lock.execute(simple: "COMMIT", logger: logger)
                await lock.close()
                await #expect(throws: (any Error).self) { try await leader.value }
                let sessions = try await follower.value
                #expect(sessions.graph.id == graph.id)
                #expect(await resolver.waiting(for: graph.id) == nil)
                #expect(try await resolver.resolve(slug: slug).graph.id == graph.id)
                try await TestEnvironment.dropCollections(global: [slug])
            }
        }
    }
}
