import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import KTServerKit
import Logging
import ServiceLifecycle
import Testing

/// A minimal JSON HTTP client for the example server.
struct APIClient: Sendable {
    let base: String
    let session: URLSession

    struct Reply: @unchecked Sendable {
        var status: Int
        var text: String
        var json: Any?
        var headers: [String: String] = [:]
        var detail: String? { (json as? [String: Any])?["detail"] as? String }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
    }

    func call(_ method: String, _ path: String, token: String? = nil, body: [String: Any]? = nil, rawBody: String? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let rawBody {
            request.httpBody = Data(rawBody.utf8)
        }
        let (data, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        OpenAPIConformance.check(method: method, path: path, status: status)
        var headers: [String: String] = [:]
        for (name, value) in (response as? HTTPURLResponse)?.allHeaderFields ?? [:] { headers["\(name)".lowercased()] = "\(value)" }
        return Reply(status: status, text: String(decoding: data, as: UTF8.self),
                     json: data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), headers: headers)
    }
}

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
    func withServer(configure: (inout Settings) -> Void = { _ in }, readinessInterval: Duration = .milliseconds(500),
                    _ body: @Sendable (Fixture) async throws -> Void) async throws {
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

    @Test("health: live touches nothing; ready and healthz name what is down (here the 'broken' pair) with 503, and answer 200 once every pair answers; the OpenAPI document lists exactly the routes the server answers")
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

    @Test("POST /graphs/{slug}/move: 200 there and back (the response names the new pair), 400 same pair / unknown key / default graph, 404 for a non-member, 422 bad body, 500 and still on its pair when the target is down")
    func moveGraph() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("srvmv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Mover"]).status == 201)
            let path = "/api/v1/graphs/\(slug)/move"
            async let moving = f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": "shared"])
            // Meanwhile the graph reads `moving`, with its target and the phases done so far
            // (the last look while it moved).
            var seen: [String: Any]?
            for _ in 0..<1000 {
                let current = try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.admin).object
                if current["status"] as? String == "moving" { seen = current["move"] as? [String: Any] }
                if current["database_connection_name"] as? String == "Shared" { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(seen?["target"] as? String == "shared")
            let steps = seen?["steps"] as? [String] ?? []
            #expect(steps.isEmpty || steps.first == "prepare-target", "\(steps)")
            let moved = try await moving
            #expect(moved.status == 200, "\(moved.text)")
            #expect(moved.object["move"] is NSNull)
            #expect(moved.object["database_connection_name"] as? String == "Shared")
            #expect(moved.object["status"] as? String == "active")
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": "shared"]).status == 400)
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": "nowhere"]).status == 400)
            #expect(try await f.api.call("POST", "/api/v1/graphs/default/move", token: f.admin, body: ["database_connection_config_key": "shared"]).status == 400)
            #expect(try await f.api.call("POST", path, token: f.alice, body: ["database_connection_config_key": "default"]).status == 404)
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": 3]).status == 422)
            let failed = try await f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": "broken"])
            #expect(failed.status == 500)
            #expect(!failed.text.contains("127.0.0.1") && !failed.text.contains("postgresql://"))
            let after = try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.admin)
            #expect(after.object["database_connection_name"] as? String == "Shared" && after.object["status"] as? String == "active")
            let back = try await f.api.call("POST", path, token: f.admin, body: ["database_connection_config_key": "default"])
            #expect(back.status == 200)
            #expect(back.object["database_connection_id"] is NSNull)
        }
    }

    @Test("POST /graphs: 201 on the system or the external pair, 400 default/unknown key, 409 taken, 422 invalid, 500 failed provisioning")
    func createGraph() async throws {
        try await withServer { f in
            let system = TestEnvironment.uniqueName("srv")
            let created = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": system, "name": "System graph"])
            #expect(created.status == 201)
            #expect(created.object["status"] as? String == "active")
            #expect(created.object["member_count"] as? Int == 1)
            #expect(created.object["schema_name"] as? String == "graph_" + system)
            #expect(created.object["database_connection_id"] is NSNull)
            #expect(created.object["contribute_to_public"] as? Bool == true)

            let withDefaultKey = TestEnvironment.uniqueName("srv")
            let viaDefault = try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                                  body: ["slug": withDefaultKey, "name": "D", "database_connection_config_key": "default"])
            #expect(viaDefault.status == 201)
            #expect(viaDefault.object["database_connection_name"] is NSNull)

            let external = TestEnvironment.uniqueName("srv")
            let onShared = try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                                body: ["slug": external, "name": "External", "database_connection_config_key": "shared",
                                                       "contribute_to_public": false])
            #expect(onShared.status == 201)
            #expect(onShared.object["database_connection_name"] as? String == "Shared")
            #expect(onShared.object["contribute_to_public"] as? Bool == false)
            let schemaOnExternal = try await PostgresConnection.withConnection(
                configuration: TestEnvironment.connectionConfiguration(f.world.externalGraph), logger: logger) {
                try await Migrator.schemaExists(try SchemaName("graph_" + external), on: $0, logger: logger)
            }
            #expect(schemaOnExternal)

            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": system, "name": "Again"]).status == 409)
            let reserved = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": "default", "name": "D"])
            #expect(reserved.status == 400)
            #expect(reserved.detail?.contains("reserved") == true)
            let unknownKey = try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                                  body: ["slug": TestEnvironment.uniqueName("srv"), "name": "U", "database_connection_config_key": "nope"])
            #expect(unknownKey.status == 400)
            #expect(unknownKey.detail == "Database connection 'nope' not found")
            for invalid: [String: Any] in [["slug": "Bad-Slug", "name": "x"], ["slug": "ab", "name": "x"], ["name": "no slug"],
                                           ["slug": "fine_slug", "name": ""], ["slug": "fine_slug", "name": "x", "graph_type": "x1"],
                                           ["slug": 12, "name": "x"], ["slug": String(repeating: "a", count: 58), "name": "x"]] {
                let reply = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: invalid)
                #expect(reply.status == 422, "\(invalid)")
                #expect(reply.detail != nil)
            }
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, rawBody: "{not json").status == 422)

            // The `broken` connection points at a closed port: 500, the row stays with status error.
            let broken = TestEnvironment.uniqueName("srv")
            let failed = try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                              body: ["slug": broken, "name": "Broken", "database_connection_config_key": "broken"])
            #expect(failed.status == 500)
            #expect(failed.detail == "Graph provisioning failed")
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(broken)", token: f.admin).object["status"] as? String == "error")
            let retry = try await f.api.call("POST", "/api/v1/graphs/\(broken)/retry-provision", token: f.admin)
            #expect(retry.status == 500)
            #expect(retry.detail == "Provisioning retry failed")
            #expect(try await f.api.call("POST", "/api/v1/graphs/\(system)/retry-provision", token: f.admin).status == 400)
            #expect(try await f.api.call("POST", "/api/v1/graphs/no_such_graph/retry-provision", token: f.admin).status == 404)

            // No response carries a database URL or the password.
            let list = try await f.api.call("GET", "/api/v1/graphs", token: f.admin)
            let connections = try await f.api.call("GET", "/api/v1/graphs/database-connections", token: f.admin)
            for text in [list.text, connections.text, created.text, onShared.text, failed.text, retry.text] {
                #expect(!text.contains("postgresql://"))
                #expect(!text.contains("127.0.0.1"))
                if let password = TestEnvironment.variables["KT_TEST_RAW_PASSWORD"] { #expect(!text.contains(password)) }
            }
        }
    }

    @Test("a failed graph converges on retry once its database is reachable (200, status active)")
    func retryAfterFailure() async throws {
        try await withServer(configure: { settings in
            // `later` points at a closed port now; the test re-points it by editing the row's key.
            var closed = settings.graphDatabases["shared"]!
            closed.graphDatabaseURL.port = 1
            settings.graphDatabases["later"] = closed
        }) { f in
            let repository = GraphRepository(f.world.controlPlane, logger: logger)
            try await repository.createDatabaseConnection(name: "Later", configKey: "later")
            let slug = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                         body: ["slug": slug, "name": "Later", "database_connection_config_key": "later"]).status == 500)
            // Point the graph at the working external pair (what an operator does once the database is back).
            let shared = try #require(try await repository.databaseConnection(configKey: "shared"))
            try await f.world.controlPlane.query("UPDATE graphs SET database_connection_id = \(shared.id) WHERE slug = \(slug)", logger: logger)
            let retried = try await f.api.call("POST", "/api/v1/graphs/\(slug)/retry-provision", token: f.admin)
            #expect(retried.status == 200)
            #expect(retried.object["status"] as? String == "active")
            #expect(retried.object["member_count"] as? Int == 1)
        }
    }

    @Test("database connections: default first then by name, never captured by /{slug}; POST 201/400/409")
    func databaseConnections() async throws {
        try await withServer(configure: { settings in
            settings.graphDatabases["spare"] = settings.graphDatabases["shared"]
        }) { f in
            let listed = try await f.api.call("GET", "/api/v1/graphs/database-connections", token: f.admin)
            #expect(listed.status == 200)
            #expect(listed.array.map { $0["config_key"] as? String } == ["default", "broken", "shared"])
            #expect(listed.array.first?["id"] is NSNull)
            #expect(listed.array.first?["created_at"] is NSNull)
            #expect(listed.array.first?["name"] as? String == "default")
            #expect(listed.array[2]["name"] as? String == "Shared")

            #expect(try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin,
                                         body: ["name": "Reserved", "config_key": "default"]).status == 400)
            let unconfigured = try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin,
                                                    body: ["name": "Ghost", "config_key": "ghost"])
            #expect(unconfigured.status == 400)
            #expect(unconfigured.detail?.contains("EXTRA_DB_GHOST_") == true)
            #expect(try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin,
                                         body: ["name": "Shared again", "config_key": "shared"]).status == 409)
            #expect(try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin,
                                         body: ["name": "x"]).status == 422)
            let created = try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin,
                                               body: ["name": "Spare", "config_key": "spare"])
            #expect(created.status == 201)
            #expect(created.object["config_key"] as? String == "spare")
            #expect(created.object["id"] as? String != nil)
        }
    }

    @Test("GET/PUT/DELETE a graph: 404 missing, deleted or not visible (non-member), 403 no role, 400 default-graph rules, soft and hard delete")
    func graphLifecycle() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Zeta"]).status == 201)

            // Listing: the superuser sees default first then by name; alice sees only the default graph.
            let adminList = try await f.api.call("GET", "/api/v1/graphs", token: f.admin).array
            #expect(adminList.first?["slug"] as? String == "default")
            #expect(adminList.contains { $0["slug"] as? String == slug })
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: f.alice).array.map { $0["slug"] as? String } == ["default"])

            // A graph alice may not see answers as a missing one (no telling which slugs exist).
            let hidden = try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.alice)
            let missing = try await f.api.call("GET", "/api/v1/graphs/no_such_graph", token: f.alice)
            #expect(hidden.status == 404)
            #expect(hidden.text == missing.text)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(slug)", token: f.alice).status == 404)
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)/members", token: f.alice).status == 404)
            #expect(try await f.api.call("GET", "/api/v1/graphs/default", token: f.alice).status == 200)
            #expect(try await f.api.call("GET", "/api/v1/graphs/no_such_graph", token: f.admin).status == 404)

            // A node written in the graph's schema is counted through the graph's own sessions.
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(f.world.systemGraph), logger: logger) {
                try await $0.query("INSERT INTO \(identifier: try SchemaName("graph_" + slug)).nodes (id, concept) VALUES (\(UUID()), \("Counted"))", logger: logger)
            }
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.admin).object["node_count"] as? Int == 1)

            // PUT: rename and toggles; the default graph may be renamed but its toggles are fixed.
            let renamed = try await f.api.call("PUT", "/api/v1/graphs/\(slug)", token: f.admin, body: ["name": "Renamed", "use_public_cache": false])
            #expect(renamed.status == 200)
            #expect(renamed.object["name"] as? String == "Renamed")
            #expect(renamed.object["use_public_cache"] as? Bool == false)
            #expect(try await f.api.call("PUT", "/api/v1/graphs/\(slug)", token: f.alice, body: ["name": "Mine"]).status == 404)
            let defaultToggle = try await f.api.call("PUT", "/api/v1/graphs/default", token: f.admin, body: ["contribute_to_public": false])
            #expect(defaultToggle.status == 400)
            #expect(defaultToggle.detail?.contains("default graph") == true)
            #expect(try await f.api.call("PUT", "/api/v1/graphs/default", token: f.admin, body: ["name": "Public"]).status == 200)
            #expect(try await f.api.call("PUT", "/api/v1/graphs/default", token: f.alice, body: ["name": "Mine"]).status == 403)
            #expect(try await f.api.call("PUT", "/api/v1/graphs/\(slug)", token: f.admin, body: ["name": 5]).status == 422)

            // DELETE: default 400, soft delete 204 then 404 and the slug stays taken; hard delete frees it.
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/default", token: f.admin).status == 400)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(slug)", token: f.admin).status == 204)
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.admin).status == 404)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(slug)", token: f.admin).status == 404)
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Again"]).status == 409)

            let hard = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": hard, "name": "Hard"]).status == 201)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(hard)?hard=true", token: f.admin).status == 204)
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": hard, "name": "Hard again"]).status == 201)
        }
    }

    @Test("members: 201/400/404/409/422 on add, last-admin guard on demote and remove, 204 on remove, 403 for readers")
    func members() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Team"]).status == 201)
            let path = "/api/v1/graphs/\(slug)/members"

            let added = try await f.api.call("POST", path, token: f.admin, body: ["user_id": f.aliceID.uuidString])
            #expect(added.status == 201)
            #expect(added.object["role"] as? String == "reader")
            #expect(added.object["email"] as? String == "alice@example.org")
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["user_id": f.aliceID.uuidString]).status == 409)
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["user_id": "not-a-uuid"]).status == 400)
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["user_id": UUID().uuidString]).status == 422)  // no such user: invalid input
            #expect(try await f.api.call("POST", path, token: f.admin, body: ["user_id": f.bobID.uuidString, "role": "superadmin"]).status == 422)

            // A reader may read the graph and its members, not manage them.
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.alice).status == 200)
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: f.alice).array.contains { $0["slug"] as? String == slug })
            #expect(try await f.api.call("GET", path, token: f.alice).array.count == 2)
            #expect(try await f.api.call("POST", path, token: f.alice, body: ["user_id": f.bobID.uuidString]).status == 403)
            #expect(try await f.api.call("GET", path, token: f.bob).status == 404)  // bob is no member: he cannot see it
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(slug)", token: f.alice).status == 403)  // a reader sees it

            // Promote alice; she can now manage members.
            let promoted = try await f.api.call("PUT", "\(path)/\(f.aliceID.uuidString)", token: f.admin, body: ["role": "admin"])
            #expect(promoted.status == 200)
            #expect(promoted.object["role"] as? String == "admin")
            let bobAdded = try await f.api.call("POST", path, token: f.alice, body: ["user_id": f.bobID.uuidString, "role": "writer"])
            #expect(bobAdded.status == 201)
            #expect(bobAdded.object["display_name"] as? String == "Bob")
            #expect(try await f.api.call("PUT", "\(path)/\(f.bobID.uuidString)", token: f.alice, body: ["role": "owner"]).status == 422)
            #expect(try await f.api.call("PUT", "\(path)/not-a-uuid", token: f.alice, body: ["role": "reader"]).status == 400)
            #expect(try await f.api.call("PUT", "\(path)/\(UUID().uuidString)", token: f.alice, body: ["role": "reader"]).status == 404)

            // Demote the creator: alice stays the only admin, and cannot be demoted or removed.
            #expect(try await f.api.call("PUT", "\(path)/\(f.adminID.uuidString)", token: f.alice, body: ["role": "reader"]).status == 200)
            let lastDemote = try await f.api.call("PUT", "\(path)/\(f.aliceID.uuidString)", token: f.alice, body: ["role": "writer"])
            #expect(lastDemote.status == 400)
            #expect(lastDemote.detail == "Cannot demote the last admin")
            let lastRemove = try await f.api.call("DELETE", "\(path)/\(f.aliceID.uuidString)", token: f.admin)
            #expect(lastRemove.status == 400)
            #expect(lastRemove.detail == "Cannot remove the last admin")

            #expect(try await f.api.call("DELETE", "\(path)/\(f.bobID.uuidString)", token: f.alice).status == 204)
            #expect(try await f.api.call("DELETE", "\(path)/\(f.bobID.uuidString)", token: f.alice).status == 404)
            let roles = try await f.api.call("GET", path, token: f.admin).array.compactMap { $0["role"] as? String }
            #expect(roles.sorted() == ["admin", "reader"])
        }
    }

    @Test("authentication never writes on the request path (last_used_at is recorded in the background, at most once a minute); a flood of made-up tokens gets 401 or 429 and leaves room for others; health checks cost no query each (issue 17, item 7)")
    func authenticationAndHealthLoad() async throws {
        // Readiness is checked once at start only, so the health checks below are all that could query.
        try await withServer(readinessInterval: .seconds(3600)) { f in
            func tokenRow() async throws -> (xmin: String, used: Date?) {
                let row = try await f.world.controlPlane.query(
                    "SELECT xmin::text, last_used_at FROM api_tokens WHERE user_id = \(f.aliceID)", logger: logger).rows[0]
                return (try row.decode(0, as: String.self), try row.decode(1, as: Date?.self))
            }
            #expect(try await tokenRow().used == nil)
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: f.alice).status == 200)
            // Recorded off the request path.
            #expect(try await TestEnvironment.waitUntil(.seconds(10)) { try await tokenRow().used != nil } != nil)
            let before = try await tokenRow()
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<40 { group.addTask { try await f.api.call("GET", "/api/v1/graphs", token: f.alice).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(Set(statuses) == [200])
            try await Task.sleep(for: .seconds(1))  // two background flushes
            #expect(try await tokenRow().xmin == before.xmin, "the token row was not written again")

            // Made-up tokens: 401, or 429 beyond the verifications allowed at once; a real token still works.
            let flood = try await withThrowingTaskGroup(of: (Bool, Int).self) { group in
                for index in 0..<150 {
                    group.addTask {
                        let token = index == 75 ? f.admin : "kt_" + UUID().uuidString + UUID().uuidString
                        return (index == 75, try await f.api.call("GET", "/api/v1/graphs", token: token).status)
                    }
                }
                return try await group.reduce(into: [(Bool, Int)]()) { $0.append($1) }
            }
            #expect(flood.filter { $0.0 }.map(\.1) == [200])
            #expect(Set(flood.filter { !$0.0 }.map(\.1)).isSubset(of: [401, 429]))

            // Health checks: no query per request. The control plane also commits in the background
            // (the change watcher polls twice a second), so the 60 checks are compared with a quiet
            // window as long; a query per check would add 60 commits.
            func commits() async throws -> Int {
                try await f.world.controlPlane.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", logger: logger)
                    .rows[0].decode(0, as: Int.self)
            }
            try await Task.sleep(for: .milliseconds(1200))
            let start = try await commits()
            let began = ContinuousClock.now
            for _ in 0..<60 { _ = try await f.api.call("GET", "/healthz") }
            let took = ContinuousClock.now - began
            try await Task.sleep(for: .milliseconds(1200))  // statistics are flushed about once a second
            let during = try await commits() - start
            let quietStart = try await commits()
            try await Task.sleep(for: took + .milliseconds(1200))
            let quiet = try await commits() - quietStart
            #expect(during - quiet < 30, "60 health checks: \(during) commits, \(quiet) in a quiet window as long")
        }
    }

    @Test("the server rejects what the document rejects: ?hard=null, a null boolean, an unknown method (405 with Allow) (issue 17, item 11)")
    func strictAgreement() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("doc")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "N", "use_public_cache": NSNull()]).status == 422)
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "N", "description": NSNull()]).status == 201)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(slug)?hard=null", token: f.admin).status == 422)
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)", token: f.admin).object["status"] as? String == "active")
            let trace = try await f.api.call("PATCH", "/api/v1/graphs/\(slug)", token: f.admin)
            #expect(trace.status == 405)
            #expect(trace.headers["allow"] == "DELETE, GET, HEAD, PUT")
            #expect(try await f.api.call("POST", "/metrics").status == 405)
            #expect(try await f.api.call("PUT", "/api/v1/graphs/database-connections", token: f.admin).headers["allow"] == "GET, HEAD, POST")
            try await TestEnvironment.dropCollections(global: [slug])
        }
    }

    @Test("every request string at its limit is accepted and one past it is a 422, counted in code points (a name of 100 graphemes but 201 code points was a 500) (issue 17, item 8)")
    func stringLimits() async throws {
        try await withServer { f in
            let accent = "e\u{301}"  // one grapheme, two code points
            let text = { (codePoints: Int) in String(repeating: accent, count: codePoints / 2) + (codePoints % 2 == 1 ? "x" : "") }
            let long = { (character: String, count: Int) in String(repeating: character, count: count) }
            let creations: [([String: Any], Int)] = [
                (["name": text(200)], 201), (["name": text(201)], 422),
                (["description": long("d", 10_000)], 201), (["description": long("d", 10_001)], 422),
                (["graph_type": "v" + long("1", 19)], 201), (["graph_type": "v" + long("1", 20)], 422),
                (["database_connection_config_key": long("k", 201)], 422),
                (["slug": long("s", 57)], 201), (["slug": long("s", 58)], 422),
            ]
            for (fields, expected) in creations {
                var body: [String: Any] = ["slug": TestEnvironment.uniqueName("lim"), "name": "Limits"]
                body.merge(fields) { $1 }
                let status = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: body).status
                #expect(status == expected, "POST /graphs with \(fields.keys.sorted()) of length \(fields.values.map { ($0 as? String)?.unicodeScalars.count ?? 0 })")
            }
            let slug = TestEnvironment.uniqueName("lim")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Limits"]).status == 201)
            let updates: [([String: Any], Int)] = [(["name": text(200)], 200), (["name": text(201)], 422), (["description": long("d", 10_001)], 422)]
            for (fields, expected) in updates {
                let status = try await f.api.call("PUT", "/api/v1/graphs/\(slug)", token: f.admin, body: fields).status
                #expect(status == expected, "PUT with \(fields.keys.sorted())")
            }
            let connections: [([String: Any], Int)] = [
                (["name": text(201), "config_key": "shared"], 422), (["name": "N", "config_key": long("k", 201)], 422), (["name": "", "config_key": "shared"], 422),
            ]
            for (fields, expected) in connections {
                let status = try await f.api.call("POST", "/api/v1/graphs/database-connections", token: f.admin, body: fields).status
                #expect(status == expected, "POST /database-connections with \(fields)")
            }
        }
    }

    @Test("a token limited to some graphs: others answer 404 on every route (also delete, hard delete, retry, status), it lists only its graphs, and routes not about one graph refuse it (403)")
    func limitedToken() async throws {
        try await withServer { f in
            let open = TestEnvironment.uniqueName("srv")
            let closed = TestEnvironment.uniqueName("srv")
            for slug in [open, closed] {
                #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": slug]).status == 201)
            }
            let broken = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                         body: ["slug": broken, "name": "B", "database_connection_config_key": "broken"]).status == 500)
            // A superuser's token limited to `open`.
            let limited = try await UserRepository(f.world.controlPlane, logger: logger)
                .issueToken(userID: f.adminID, name: "limited", graphSlugs: [open]).token.revealedValue
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(open)", token: limited).status == 200)
            #expect(try await f.api.call("GET", "/api/v1/graphs", token: limited).array.map { $0["slug"] as? String } == [open])
            for (method, path) in [("GET", "/api/v1/graphs/\(closed)"), ("DELETE", "/api/v1/graphs/\(closed)?hard=true"), ("DELETE", "/api/v1/graphs/\(closed)"),
                                   ("GET", "/api/v1/graphs/\(closed)/status"), ("POST", "/api/v1/graphs/\(broken)/retry-provision"),
                                   ("GET", "/api/v1/graphs/\(closed)/members"), ("GET", "/api/v1/graphs/\(closed)/nodes")] {
                #expect(try await f.api.call(method, path, token: limited).status == 404, "\(method) \(path)")
            }
            // Nothing happened to them.
            let repository = GraphRepository(f.world.controlPlane, logger: logger)
            #expect(try await repository.graph(slug: closed)?.status == .active)
            #expect(try await repository.graph(slug: broken)?.status == .error)
            #expect(try await TestEnvironment.schemaExists("graph_\(closed)", on: f.world.systemGraph))
            // Routes that are not about one graph refuse a limited token.
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: limited, body: ["slug": TestEnvironment.uniqueName("srv"), "name": "N"]).status == 403)
            #expect(try await f.api.call("GET", "/api/v1/graphs/database-connections", token: limited).status == 403)
            #expect(try await f.api.call("POST", "/api/v1/graphs/database-connections", token: limited, body: ["name": "x", "config_key": "shared"]).status == 403)
            // On its own graph it may do what the superuser may.
            #expect(try await f.api.call("GET", "/api/v1/graphs/\(open)/status", token: limited).status == 200)
            #expect(try await f.api.call("DELETE", "/api/v1/graphs/\(open)", token: limited).status == 204)
        }
    }

    /// The value of the sample `name{labels}` (labels as written, in order) in Prometheus text, or 0.
    static func sample(_ text: String, _ name: String, containing fragments: [String] = []) -> Double {
        text.split(separator: "\n").filter { line in line.hasPrefix(name) && fragments.allSatisfy { line.contains($0) } }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test("GET /metrics: Prometheus text whose numbers move: HTTP requests by route and status, pool connections and checkout waits, provisioning steps, migrations")
    func metrics() async throws {
        try await withServer { f in
            let before = try await f.api.call("GET", "/metrics")
            #expect(before.status == 200)
            let slug = TestEnvironment.uniqueName("met")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Metrics"]).status == 201)
            for _ in 0..<3 { #expect(try await f.api.call("GET", "/api/v1/graphs/\(slug)/nodes", token: f.admin).status == 200) }
            #expect(try await f.api.call("GET", "/api/v1/graphs/no_such_graph/nodes", token: f.admin).status == 404)
            let after = try await f.api.call("GET", "/metrics")
            let route = "/api/v1/graphs/{slug}/nodes"
            #expect(Self.sample(after.text, "http_server_request_duration_count", containing: [route, "200"])
                    >= Self.sample(before.text, "http_server_request_duration_count", containing: [route, "200"]) + 3, "\(after.text.prefix(3000))")
            #expect(Self.sample(after.text, "http_server_request_duration_count", containing: [route, "404"]) >= 1)
            #expect(Self.sample(after.text, "kt_provision_step_duration_count", containing: ["activate"])
                    >= Self.sample(before.text, "kt_provision_step_duration_count", containing: ["activate"]) + 1)
            #expect(Self.sample(after.text, "kt_db_pool_checkout_wait_count") > Self.sample(before.text, "kt_db_pool_checkout_wait_count"))
            #expect(after.text.contains("kt_db_pool_connections_idle{"))
            try await TestEnvironment.dropCollections(global: [slug])
        }
    }

    @Test("a node's facts and edges come in pages (limit 1-500, a Link to the next page), a subgraph within caps says whether it was truncated (issue 17, item 9)")
    func boundedResponses() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("cap")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": slug, "name": "Caps"]).status == 201)
            let (hub, bounded) = try await withGraphSystem(settings: f.world.settings, logger: logger) { system in
                let sessions = try await system.sessions(slug: slug)
                let worker = sessions.workerEngine(embedder: nil, logger: logger)
                let hub = try await worker.createNode(concept: "Hub")
                for index in 1...4 {
                    let leaf = try await worker.createNode(concept: "Leaf \(index)")
                    try await worker.createEdge(sourceID: hub.id, targetID: leaf.id)
                    let fact = try await worker.createFact(content: "Fact \(index) about the hub")
                    try await worker.linkFactToNode(nodeID: hub.id, factID: fact.id)
                }
                try await sessions.syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                let reader = sessions.readEngine(logger: logger)
                return (hub, [try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 3, maxEdges: 10),
                              try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 10, maxEdges: 2),
                              try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 10, maxEdges: 10)])
            }
            #expect(bounded[0].nodes.count == 3 && bounded[0].truncated)
            #expect(bounded[1].edges.count <= 2 && bounded[1].truncated)
            #expect(bounded[2].nodes.count == 5 && bounded[2].edges.count == 4 && !bounded[2].truncated)

            let node = "/api/v1/graphs/\(slug)/nodes/\(hub.id.uuidString)"
            let first = try await f.api.call("GET", "\(node)/facts?limit=3", token: f.admin)
            #expect(first.array.count == 3)
            let link = try #require(first.headers["link"])
            #expect(link.contains("offset=3") && link.contains("limit=3") && link.hasSuffix("rel=\"next\""))
            let next = String(link.dropFirst().prefix { $0 != ">" })
            let second = try await f.api.call("GET", next, token: f.admin)
            #expect(second.array.count == 1)
            #expect(second.headers["link"] == nil)
            #expect(try await f.api.call("GET", "\(node)/facts", token: f.admin).array.count == 4)
            let edges = try await f.api.call("GET", "\(node)/edges?limit=2&direction=both", token: f.admin)
            #expect(edges.array.count == 2)
            #expect(edges.headers["link"]?.contains("direction=both") == true)
            for bad in ["limit=0", "limit=501", "offset=-1"] {
                #expect(try await f.api.call("GET", "\(node)/edges?\(bad)", token: f.admin).status == 422, "\(bad)")
            }
            let sub = try await f.api.call("GET", "/api/v1/graphs/\(slug)/subgraph?node_ids=\(hub.id.uuidString)&depth=1", token: f.admin)
            #expect(sub.object["truncated"] as? Bool == false)
            #expect((sub.object["nodes"] as? [Any])?.count == 5)
            try await TestEnvironment.dropCollections(global: [slug])
        }
    }

    @Test("graph read routes over ReadGraphEngine on a graph in the external databases: data written by WorkerGraphEngine, synced, read back; 404/503/403/422")
    func graphReadRoutes() async throws {
        try await withServer { f in
            let slug = TestEnvironment.uniqueName("srv")
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin,
                                         body: ["slug": slug, "name": "Read", "database_connection_config_key": "shared"]).status == 201)
            // Both engines on the graph's own sessions (the external pair), through the resolver.
            let (alpha, beta, fact) = try await withGraphSystem(settings: f.world.settings, logger: logger) { system in
                do {
                    let sessions = try await system.sessions(slug: slug)
                    let worker = sessions.workerEngine(embedder: LocalEmbedder(dimensions: f.world.settings.embeddingDimensions), logger: logger)
                    let alpha = try await worker.createNode(concept: "Alpha Centauri")
                    let beta = try await worker.createNode(concept: "Beta Pictoris")
                    let fact = try await worker.createFact(content: "Alpha Centauri is the nearest star system")
                    try await worker.linkFactToNode(nodeID: alpha.id, factID: fact.id)
                    try await worker.createEdge(sourceID: alpha.id, targetID: beta.id)
                    try await sessions.syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                    return (alpha, beta, fact)
                }
            }
            // The rows live in the external pair only.
            for url in [f.world.externalGraph, f.world.systemGraph] {
                let count = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { connection in
                    try await connection.query("SELECT count(*) FROM pg_tables WHERE schemaname = \("graph_" + slug) AND tablename = 'nodes'", logger: logger)
                        .first?.decode(0, as: Int.self)
                }
                #expect(count == (url == f.world.externalGraph ? 1 : 0))
            }
            let base = "/api/v1/graphs/\(slug)"
            let page = try await f.api.call("GET", "\(base)/nodes?limit=1&sort=concept", token: f.admin)
            #expect(page.status == 200)
            #expect(page.object["total"] as? Int == 2)
            #expect((page.object["items"] as? [[String: Any]])?.map { $0["concept"] as? String } == ["Alpha Centauri"])
            #expect(try await f.api.call("GET", "\(base)/nodes?search=pictoris", token: f.admin).object["total"] as? Int == 1)
            #expect(try await f.api.call("GET", "\(base)/nodes?sort=bogus", token: f.admin).status == 422)
            #expect(try await f.api.call("GET", "\(base)/nodes?limit=0", token: f.admin).status == 422)
            let node = try await f.api.call("GET", "\(base)/nodes/\(alpha.id.uuidString)", token: f.admin)
            #expect(node.object["fact_count"] as? Int == 1)
            #expect(node.object["edge_count"] as? Int == 1)
            #expect(try await f.api.call("GET", "\(base)/nodes/\(UUID().uuidString)", token: f.admin).status == 404)
            #expect(try await f.api.call("GET", "\(base)/nodes/not-a-uuid", token: f.admin).status == 422)
            #expect(try await f.api.call("GET", "\(base)/nodes/\(alpha.id.uuidString)/facts", token: f.admin).array.map { $0["id"] as? String } == [fact.id.uuidString.lowercased()])
            #expect(try await f.api.call("GET", "\(base)/nodes/\(beta.id.uuidString)/edges", token: f.admin).array.count == 1)
            let text = try await f.api.call("GET", "\(base)/facts/search?q=nearest", token: f.admin)
            #expect(text.array.count == 1)
            let vector = try await f.api.call("GET", "\(base)/facts/search?q=nearest%20star%20system&mode=vector", token: f.admin)
            #expect(vector.array.first?["id"] as? String == fact.id.uuidString.lowercased())
            #expect(try await f.api.call("GET", "\(base)/facts/search", token: f.admin).status == 422)
            let sub = try await f.api.call("GET", "\(base)/subgraph?node_ids=\(alpha.id.uuidString)&depth=1", token: f.admin)
            #expect((sub.object["nodes"] as? [Any])?.count == 2)
            #expect((sub.object["edges"] as? [Any])?.count == 1)

            #expect(try await f.api.call("GET", "/api/v1/graphs/no_such_graph/nodes", token: f.admin).status == 404)
            #expect(try await f.api.call("GET", "\(base)/nodes", token: f.alice).status == 404)
            let broken = TestEnvironment.uniqueName("srv")
            _ = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": broken, "name": "B", "database_connection_config_key": "broken"])
            let inactive = try await f.api.call("GET", "/api/v1/graphs/\(broken)/nodes", token: f.admin)
            #expect(inactive.status == 503)
            #expect(inactive.detail == "Graph is not yet active")
        }
    }

    @Test("vector search embeds with the configured service; when that service is unreachable it is 502 and text search still answers")
    func embeddingServiceDown() async throws {
        try await withServer(configure: { $0.embeddingBaseURL = URL(string: "http://127.0.0.1:9/v1") }) { f in
            let vector = try await f.api.call("GET", "/api/v1/graphs/default/facts/search?q=anything&mode=vector", token: f.admin)
            #expect(vector.status == 502)
            #expect(vector.detail == "Embedding service unavailable")
            #expect(try await f.api.call("GET", "/api/v1/graphs/default/facts/search?q=anything", token: f.admin).status == 200)
        }
    }
}
