import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import KTServerKit
import Logging
import ServiceLifecycle
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("Example server (kt-server) over real databases", .enabled(if: TestEnvironment.isEnabled))
struct ServerTests {
    let logger = TestEnvironment.logger

    struct Fixture: Sendable {
        var world: TestWorld
        var api: APIClient
        var admin: String
        var alice: String
        var aliceID: UUID
        var bob: String
        var bobID: UUID
        var adminID: UUID
    }

    /// A fresh world, a running server on a free port, a superuser and two users with tokens.
    /// - Parameter readinessInterval: how often the server checks readiness in the background.
    func withServer(
        configure: (inout Settings) -> Void = { _ in }, readinessInterval: Duration = .milliseconds(500),
        _ body: @Sendable (Fixture) async throws -> Void
    ) async throws {
        try await TestWorld.with(logger: logger) { world in
            var world = world
            configure(&world.settings)
            let users = UserRepository(world.controlPlane, logger: logger)
            let admin = try await users.createUser(email: "root@example.org", isSuperuser: true)
            let alice = try await users.createUser(email: "alice@example.org")
            let bob = try await users.createUser(email: "Bob@Example.org", displayName: "Bob")
            let adminToken = try await users.issueToken(userID: admin.id).token.revealedValue
            let aliceToken = try await users.issueToken(userID: alice.id).token.revealedValue
            let bobToken = try await users.issueToken(userID: bob.id).token.revealedValue

            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = try await KTServer.makeApplication(
                settings: world.settings,
                configuration: .init(host: "127.0.0.1", port: 0, metrics: Self.metrics, tokenUseInterval: .milliseconds(300), readinessInterval: readinessInterval),
                logger: logger
            ) { port in continuation.yield(port) }
            let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw KTDBError(code: .connectionFailed, message: "server did not start") }
                let configuration = URLSessionConfiguration.default
                configuration.urlCache = nil
                configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
                let session = URLSession(configuration: configuration)
                defer { session.invalidateAndCancel() }
                let fixture = Fixture(
                    world: world, api: APIClient(base: "http://127.0.0.1:\(port)", session: session),
                    admin: adminToken, alice: aliceToken, aliceID: alice.id, bob: bobToken, bobID: bob.id, adminID: admin.id)
                do {
                    try await body(fixture)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    /// The test process's metrics registry: swift-metrics is bootstrapped once, with Prometheus.
    static let metrics = KTServer.bootstrapPrometheus()

    @Test(
        "health: live touches nothing; ready and healthz name what is down (here the 'broken' pair) with 503, and answer 200 once every pair answers; the OpenAPI document lists exactly the routes the server answers"
    )
    func healthAndOpenAPI() async throws {
        try await withServer { f in
            #expect(try await f.api.call("GET", "/health/live").status == 200)
            for path in ["/health/ready", "/healthz"] {
                let down = try await f.api.call("GET", path)
                #expect(down.status == 503)
                let named = Set(down.object["down"] as? [String] ?? [])
                #expect(named.isSuperset(of: ["graph-db of 'broken'", "write-db of 'broken'"]), "\(named)")
                #expect(down.detail?.contains("broken") == true)
                #expect(!down.text.contains(f.world.systemGraph.password?.revealedValue ?? "\u{0}"))
            }
            // Without the unreachable pair's row, everything answers.
            try await f.world.controlPlane.query("DELETE FROM database_connections WHERE config_key = 'broken'", logger: logger)
            // Readiness is checked in the background: the next checks see it.
            var health = try await f.api.call("GET", "/healthz")
            _ = try await TestEnvironment.waitUntil(.seconds(20)) {
                health = try await f.api.call("GET", "/healthz")
                return health.status == 200
            }
            #expect(health.status == 200)
            #expect(health.object["status"] as? String == "ok")

            let doc = try await f.api.call("GET", "/openapi.json")
            #expect(doc.status == 200)
            #expect((doc.object["openapi"] as? String)?.hasPrefix("3.") == true)
            // Served from the resource file the response checks read.
            #expect(OpenAPIConformance.isLoaded)
            let paths = doc.object["paths"] as? [String: [String: Any]] ?? [:]
            var documented: Set<String> = []
            for (path, methods) in paths {
                for method in methods.keys {
                    documented.insert("\(method.uppercased()) \(path)")
                    let concrete = path.replacingOccurrences(of: "{slug}", with: "no_such_graph")
                        .replacingOccurrences(of: "{user_id}", with: UUID().uuidString).replacingOccurrences(of: "{node_id}", with: UUID().uuidString)
                    let reply = try await f.api.call(method.uppercased(), concrete, token: f.admin, body: ["get", "delete"].contains(method) ? nil : [:])
                    if path == "/metrics" { continue }  // text, not a JSON error
                    // The router's own 404 says "Not Found"; a routed handler answers differently.
                    #expect(!(reply.status == 404 && reply.detail == "Not Found"), "\(method) \(path) is documented but not routed")
                }
            }
            #expect(documented.count == 25)
            let unknown = try await f.api.call("GET", "/api/v1/nothing-here", token: f.admin)
            #expect(unknown.status == 404)
            #expect(unknown.detail == "Not Found")
        }
    }

    @Test("no token or an unknown token is 401 with a JSON detail; a non-superuser on admin routes is 403")
    func authentication() async throws {
        try await withServer { f in
            let none = try await f.api.call("GET", "/api/v1/graphs")
            #expect(none.status == 401)
            #expect(none.detail == "Not authenticated")
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: "kt_unknown").status == 401)
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: String(f.alice.dropLast())).status == 401)
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: f.alice).status == 200)

            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.alice, body: ["slug": "nope", "name": "N"]).status == 403)
            #expect(try await f.api.call("GET", "/api/v1/graphs/database-connections", token: f.alice).status == 403)
            #expect(try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.alice, body: ["name": "x", "config_key": "shared"]).status == 403)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/default", token: f.alice).status == 403)
            #expect(try await f.api.call("POST", "/api/v1/graphs/default/retry-provision", token: f.alice).status == 403)
        }
    }
}
