import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import ServiceLifecycle
import Testing

@Suite("SyncService across graphs and pairs", .enabled(if: TestEnvironment.isEnabled))
struct SyncServiceTests {
    let logger = TestEnvironment.logger

    /// Polls until `condition` holds, at most `limit`.
    func eventually(_ limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        try await TestEnvironment.waitUntil(limit, condition) != nil
    }

    @Test("a pair whose graph hangs does not hold up another pair: its cycle is cut off at the task timeout while the other pair's graphs keep syncing; an unreachable pair fails alone")
    func slowPairIsolated() async throws {
        try await TestWorld.with(logger: logger) { world in
            let fast = TestEnvironment.uniqueName("fast"), slow = TestEnvironment.uniqueName("slow")
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                try await system.provisioner.createGraph(slug: fast, name: "Fast")
                try await system.provisioner.createGraph(slug: slow, name: "Slow", databaseKey: "shared")
                // The slow graph's watermarks are locked away: its cycle waits on them.
                let blocker = try await PostgresConnection.connect(configuration: TestEnvironment.connectionConfiguration(world.externalWrite), logger: logger)
                try await blocker.execute(simple: "BEGIN", logger: logger)
                try await blocker.execute(simple: "LOCK TABLE \(TableName("sync_watermarks", in: try SchemaName("graph_" + slow))) IN ACCESS EXCLUSIVE MODE", logger: logger)

                var settings = world.settings.sync
                settings.interval = .milliseconds(200)
                // Loose enough that a cycle of the released graph finishes on a loaded machine (one
                // cut off at the timeout rolls back and starts over).
                settings.taskTimeout = .seconds(5)
                settings.parallelism = 2
                // A third, unreachable pair (its graph row points at a closed port).
                let unreachable = TestEnvironment.uniqueName("down")
                let broken = try #require(try await GraphRepository(world.controlPlane, logger: logger).databaseConnection(configKey: "broken"))
                let row = try await GraphRepository(world.controlPlane, logger: logger).create(slug: try GraphSlug(unreachable), name: "Down", databaseConnectionID: broken.id)
                try await GraphRepository(world.controlPlane, logger: logger).update(id: row.id, status: .active)
                let service = SyncService(settings: settings, logger: logger) { try await system.syncTargets() }
                let group = ServiceGroup(services: [service], gracefulShutdownSignals: [], logger: logger)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    let worker = try await system.workerEngine(slug: fast, logger: logger), reader = try await system.readEngine(slug: fast, logger: logger)
                    for round in 0..<3 {
                        let node = try await worker.createNode(concept: "Fast \(round)")
                        // Held for good, the slow graph would keep the fast pair waiting forever; the
                        // bound is loose because the whole suite shares two cores with the servers.
                        #expect(try await eventually(.seconds(15)) { try await reader.node(id: node.id) != nil }, "round \(round): the fast pair waited for the slow one")
                    }
                    // The slow graph is really held: its write does not arrive while the lock stands.
                    let slowWorker = try await system.workerEngine(slug: slow, logger: logger), slowReader = try await system.readEngine(slug: slow, logger: logger)
                    let node = try await slowWorker.createNode(concept: "Slow")
                    #expect(try await !eventually(.milliseconds(1500)) { try await slowReader.node(id: node.id) != nil })
                    // Released, it catches up.
                    try await blocker.execute(simple: "ROLLBACK", logger: logger)
                    await blocker.close()
                    #expect(try await eventually(.seconds(30)) { try await slowReader.node(id: node.id) != nil })
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                }
            }
            try await TestEnvironment.dropCollections(global: [fast], external: [slow])
        }
    }
}

extension SyncServiceTests {
    @Test("a pair stopped while the service syncs: the system pair's graphs keep syncing; with the pair back, its graph catches up")
    func pairStoppedDuringSync() async throws {
        try await TestWorld.with(logger: logger) { world in
            let proxy = try TCPProxy(targetPort: world.externalGraph.port ?? 5432)
            defer { proxy.stop() }
            let settings = try await MigrateAllTests().flakyPair(world, through: proxy)
            let steady = TestEnvironment.uniqueName("steady"), flaky = TestEnvironment.uniqueName("flaky")
            try await withGraphSystem(settings: settings, logger: logger) { system in
                try await system.provisioner.createGraph(slug: steady, name: "Steady")
                try await system.provisioner.createGraph(slug: flaky, name: "Flaky", databaseKey: "flaky")
                var sync = settings.sync
                sync.interval = .milliseconds(200)
                sync.taskTimeout = .seconds(3)
                let service = SyncService(settings: sync, logger: logger) { try await system.syncTargets() }
                let group = ServiceGroup(services: [service], gracefulShutdownSignals: [], logger: logger)
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    let steadyWorker = try await system.workerEngine(slug: steady, logger: logger), steadyReader = try await system.readEngine(slug: steady, logger: logger)
                    let flakyWorker = try await system.workerEngine(slug: flaky, logger: logger), flakyReader = try await system.readEngine(slug: flaky, logger: logger)
                    let before = try await flakyWorker.createNode(concept: "Before")
                    // The first cycle opens connections through the proxy; on a loaded machine it
                    // may be cut off at the task timeout and the next pass finishes it.
                    #expect(try await eventually(.seconds(15)) { try await flakyReader.node(id: before.id) != nil })

                    proxy.stop()
                    for round in 0..<3 {
                        let node = try await steadyWorker.createNode(concept: "Steady \(round)")
                        #expect(try await eventually(.seconds(15)) { try await steadyReader.node(id: node.id) != nil }, "round \(round)")
                    }
                    try proxy.start()
                    let after = try await flakyWorker.createNode(concept: "After")
                    #expect(try await eventually(.seconds(15)) { (try? await flakyReader.node(id: after.id)) != nil })
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                }
            }
            try await TestEnvironment.dropCollections(global: [steady], external: [flaky])
        }
    }
}
