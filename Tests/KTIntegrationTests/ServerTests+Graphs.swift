import Foundation
import KTConfig
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

/// Graphs, database connections and members over HTTP.
extension ServerTests {
    @Test(
        "POST /graphs/{slug}/move: 200 there and back (the response names the new pair), 400 same pair / unknown key / default graph, 404 for a non-member, 422 bad body, 500 and still on its pair when the target is down"
    )
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
            let viaDefault = try await f.api.call(
                "POST", "/api/v1/graphs", token: f.admin,
                body: ["slug": withDefaultKey, "name": "D", "database_connection_config_key": "default"])
            #expect(viaDefault.status == 201)
            #expect(viaDefault.object["database_connection_name"] is NSNull)

            let external = TestEnvironment.uniqueName("srv")
            let onShared = try await f.api.call(
                "POST", "/api/v1/graphs", token: f.admin,
                body: [
                    "slug": external, "name": "External", "database_connection_config_key": "shared",
                    "contribute_to_public": false,
                ])
            #expect(onShared.status == 201)
            #expect(onShared.object["database_connection_name"] as? String == "Shared")
            #expect(onShared.object["contribute_to_public"] as? Bool == false)
            let schemaOnExternal = try await PostgresConnection.withConnection(
                configuration: TestEnvironment.connectionConfiguration(f.world.externalGraph), logger: logger
            ) {
                try await Migrator.schemaExists(try SchemaName("graph_" + external), on: $0, logger: logger)
            }
            #expect(schemaOnExternal)

            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": system, "name": "Again"]).status == 409)
            let reserved = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: ["slug": "default", "name": "D"])
            #expect(reserved.status == 400)
            #expect(reserved.detail?.contains("reserved") == true)
            let unknownKey = try await f.api.call(
                "POST", "/api/v1/graphs", token: f.admin,
                body: ["slug": TestEnvironment.uniqueName("srv"), "name": "U", "database_connection_config_key": "nope"])
            #expect(unknownKey.status == 400)
            #expect(unknownKey.detail == "Database connection 'nope' not found")
            for invalid: [String: Any] in [
                ["slug": "Bad-Slug", "name": "x"], ["slug": "ab", "name": "x"], ["name": "no slug"],
                ["slug": "fine_slug", "name": ""], ["slug": "fine_slug", "name": "x", "graph_type": "x1"],
                ["slug": 12, "name": "x"], ["slug": String(repeating: "a", count: 58), "name": "x"],
            ] {
                let reply = try await f.api.call("POST", "/api/v1/graphs", token: f.admin, body: invalid)
                #expect(reply.status == 422, "\(invalid)")
                #expect(reply.detail != nil)
            }
            #expect(try await f.api.call("POST", "/api/v1/graphs", token: f.admin, rawBody: "{not json").status == 422)

            // The `broken` connection points at a closed port: 500, the row stays with status error.
            let broken = TestEnvironment.uniqueName("srv")
            let failed = try await f.api.call(
                "POST", "/api/v1/graphs", token: f.admin,
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
            #expect(
                try await f.api.call(
                    "POST", "/api/v1/graphs", token: f.admin,
                    body: ["slug": slug, "name": "Later", "database_connection_config_key": "later"]
                ).status == 500)
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

            #expect(
                try await f.api.call(
                    "POST", "/api/v1/graphs/database-connections", token: f.admin,
                    body: ["name": "Reserved", "config_key": "default"]
                ).status == 400)
            let unconfigured = try await f.api.call(
                "POST", "/api/v1/graphs/database-connections", token: f.admin,
                body: ["name": "Ghost", "config_key": "ghost"])
            #expect(unconfigured.status == 400)
            #expect(unconfigured.detail?.contains("EXTRA_DB_GHOST_") == true)
            #expect(
                try await f.api.call(
                    "POST", "/api/v1/graphs/database-connections", token: f.admin,
                    body: ["name": "Shared again", "config_key": "shared"]
                ).status == 409)
            #expect(
                try await f.api.call(
                    "POST", "/api/v1/graphs/database-connections", token: f.admin,
                    body: ["name": "x"]
                ).status == 422)
            let created = try await f.api.call(
                "POST", "/api/v1/graphs/database-connections", token: f.admin,
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
}
