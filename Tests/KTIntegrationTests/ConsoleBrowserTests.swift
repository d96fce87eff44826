import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import Logging
import Testing

/// The web console in a real browser: Debian's chromium driven by Selenium
/// (`Tests/Browser/console_test.py`, in phases) against kt-server processes on a fresh world;
/// between the phases this suite checks the databases and prepares what the next one needs.
/// Screenshots of every page go to `.build/console-screenshots/`.
@Suite(.enabled(if: TestEnvironment.isEnabled), .serialized)
struct ConsoleBrowserTests {
    let logger = Logger(label: "kt.test.console")

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Browser/console_test.py")
    }

    static var screenshots: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/console-screenshots")
    }

    /// Runs one phase of the browser script; its output is part of the failure message.
    static func runPhase(_ phase: Int, base: String, arguments: [String: String]) async throws -> (status: Int32, output: String) {
        let python = try #require(TestEnvironment.variables["KT_TEST_BROWSER_PYTHON"], "scripts/test-env installs the browser test tools")
        var list = [script.path, "\(phase)", "--base", base, "--screenshots", screenshots.path]
        for (name, value) in arguments.sorted(by: { $0.key < $1.key }) { list += ["--\(name)", value] }
        return try await TestEnvironment.runProcess(URL(fileURLWithPath: python), list)
    }

    @Test("console pages in chromium: sign-in, the Database picker, provisioning failure and retry, members, nodes, CSRF, no JavaScript, axe")
    func console() async throws {
        try await TestWorld.with(logger: logger) { world in
            let users = UserRepository(world.controlPlane, logger: logger)
            let admin = try await users.createUser(email: "root@example.org", isSuperuser: true)
            let adminToken = try await users.issueToken(userID: admin.id).token.revealedValue
            let alice = try await users.createUser(email: "alice@example.org")
            let aliceToken = try await users.issueToken(userID: alice.id).token.revealedValue

            // A graph with nodes to browse: 30 (two pages), one whose concept is markup, and a
            // parent with a child and a fact.
            let dataSlug = TestEnvironment.uniqueName("web")
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                _ = try await system.prepare()
                _ = try await system.provisioner.createGraph(slug: dataSlug, name: "Data", createdBy: admin.id)
                let worker = try await system.workerEngine(slug: dataSlug, logger: logger)
                _ = try await worker.createNodes((1...27).map { WorkerGraphEngine.NodeSpec(concept: "Concept \($0)") })
                _ = try await worker.createNodes([WorkerGraphEngine.NodeSpec(concept: "<script>alert(1)</script>")])
                let parent = try await worker.createNode(concept: "Parent node")
                let child = try await worker.createNode(concept: "Child node")
                _ = try await worker.setParent(nodeID: child.id, parentID: parent.id)
                let fact = try await worker.createFact(content: "A fact about the parent")
                try await worker.linkFactToNode(nodeID: parent.id, factID: fact.id)
                try await system.sessions(slug: dataSlug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
            }

            let environment = try MigrateAllTests.environment(world)
            let slug = TestEnvironment.uniqueName("web"), failing = TestEnvironment.uniqueName("web"), nojs = TestEnvironment.uniqueName("web")
            let arguments = [
                "admin-token": adminToken, "user-token": aliceToken, "slug": slug, "failing-slug": failing, "data-slug": dataSlug,
                "nojs-slug": nojs, "member-email": "alice@example.org", "admin-email": "root@example.org",
            ]
            let server = try await ServerProcess(environment: environment)
            defer { server.stop() }
            let base = "http://127.0.0.1:\(server.port)"

            let first = try await Self.runPhase(1, base: base, arguments: arguments)
            #expect(first.status == 0, "\(first.output)\n--- server ---\n\(server.output)")
            try #require(first.status == 0)
            // The graph made through the picker lives in the external pair only.
            #expect(try await TestEnvironment.schemaExists("graph_\(slug)", on: world.externalGraph))
            #expect(try await TestEnvironment.schemaExists("graph_\(slug)", on: world.externalWrite))
            #expect(try await !TestEnvironment.schemaExists("graph_\(slug)", on: world.systemGraph))
            #expect(try await !TestEnvironment.schemaExists("graph_\(slug)", on: world.systemWrite))
            // The failed one is in error with its reason; point it at the working pair (what an
            // operator does once the database is reachable) so that Retry converges.
            let repository = GraphRepository(world.controlPlane, logger: logger)
            let failed = try #require(try await repository.graph(slug: failing))
            #expect(failed.status == .error)
            #expect(failed.provisioningError?.hasPrefix("create-graph-schema") == true)
            let shared = try #require(try await repository.databaseConnection(configKey: "shared"))
            try await world.controlPlane.query("UPDATE graphs SET database_connection_id = \(shared.id) WHERE slug = \(failing)", logger: logger)

            let second = try await Self.runPhase(2, base: base, arguments: arguments)
            #expect(second.status == 0, "\(second.output)\n--- server ---\n\(server.output)")
            // The hard-deleted slug was reused on the system pair; no probe graph was made by a forged POST.
            #expect(try await repository.graph(slug: failing)?.databaseConnectionID == nil)
            #expect(try await repository.graph(slug: "csrf_probe") == nil)
            #expect(try await repository.graph(slug: nojs)?.status == .active)

            // A server whose database list fails: the form says so and cannot be submitted.
            var faulty = environment
            faulty["KT_CONSOLE_TEST_FAULTS"] = "connections"
            let faultyServer = try await ServerProcess(environment: faulty)
            defer { faultyServer.stop() }
            let third = try await Self.runPhase(3, base: "http://127.0.0.1:\(faultyServer.port)", arguments: arguments)
            #expect(third.status == 0, "\(third.output)\n--- server ---\n\(faultyServer.output)")
        }
    }
}
