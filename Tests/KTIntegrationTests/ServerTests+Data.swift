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

/// Metrics and the graph data routes.
extension ServerTests {
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
            #expect(
                Self.sample(after.text, "http_server_request_duration_count", containing: [route, "200"])
                    >= Self.sample(before.text, "http_server_request_duration_count", containing: [route, "200"]) + 3, "\(after.text.prefix(3000))")
            #expect(Self.sample(after.text, "http_server_request_duration_count", containing: [route, "404"]) >= 1)
            #expect(
                Self.sample(after.text, "kt_provision_step_duration_count", containing: ["activate"])
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
                return (
                    hub,
                    [
                        try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 3, maxEdges: 10),
                        try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 10, maxEdges: 2),
                        try await reader.subgraph(nodeIDs: [hub.id], depth: 1, maxNodes: 10, maxEdges: 10),
                    ]
                )
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
            #expect(
                try await f.api.call(
                    "POST", "/api/v1/graphs", token: f.admin,
                    body: ["slug": slug, "name": "Read", "database_connection_config_key": "shared"]
                ).status == 201)
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
