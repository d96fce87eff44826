import Foundation
import KTConfig
import KTDB
import KTGraph
import KTQdrant
import Logging
import Testing

/// A graph schema migrated in fresh write-db and graph-db databases, with pools, sessions,
/// a Qdrant client and the graph's collections.
struct GraphFixture: Sendable {
    var slug: String
    /// The fresh write-db (role `kt`).
    var writeURL: DatabaseURL
    var writeSession: DatabaseSession
    var graphSession: DatabaseSession
    var qdrant: QdrantClient
    var collections: QdrantCollections
    var embedder: LocalEmbedder
    var logger: Logger

    var worker: WorkerGraphEngine {
        WorkerGraphEngine(writeSession: writeSession, embedder: embedder, qdrant: qdrant, collections: collections, logger: logger)
    }
    var reader: ReadGraphEngine { ReadGraphEngine(session: graphSession, qdrant: qdrant, collections: collections, logger: logger) }
    func sync(batchSize: Int = 500) -> SyncEngine {
        var settings = SyncSettings()
        settings.batchSize = batchSize
        settings.maxRetries = 50
        return SyncEngine(writeSession: writeSession, graphSession: graphSession, graphSlug: slug, settings: settings, logger: logger)
    }

    static func with<T: Sendable>(logger: Logger, _ body: (GraphFixture) async throws -> T) async throws -> T {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemGraphURL) { graphURL in
            try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { writeURL in
                let slug = TestEnvironment.uniqueName("g")
                let schema = try SchemaName("graph_" + slug)
                try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(graphURL), logger: logger) { graphDB in
                    try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(writeURL), logger: logger) { writeDB in
                        try await Migrator.migrateGraph(schema: schema, graphDB: graphDB, writeDB: writeDB, logger: logger)
                    }
                }
                let qdrant = try QdrantClient(configuration: .init(url: TestEnvironment.variables["KT_TEST_QDRANT_URL"] ?? ""), logger: logger)
                let collections = QdrantCollections(graphSlug: slug)
                try await qdrant.ensureGraphCollections(collections, vectorSize: 16)
                defer { qdrant.close() }
                let result = try await TestEnvironment.withPool(graphURL, size: 4, maxOverflow: 4) { graphPool in
                    try await TestEnvironment.withPool(writeURL, size: 6, maxOverflow: 4) { writePool in
                        try await body(
                            GraphFixture(
                                slug: slug, writeURL: writeURL, writeSession: DatabaseSession(pool: writePool, schema: schema), graphSession: DatabaseSession(pool: graphPool, schema: schema),
                                qdrant: qdrant, collections: collections, embedder: LocalEmbedder(dimensions: 16), logger: logger))
                    }
                }
                for name in collections.all { _ = try? await qdrant.deleteCollection(name) }
                return result
            }
        }
    }
}

@Suite("KTGraph engines and sync (real PostgreSQL and Qdrant)", .enabled(if: TestEnvironment.isEnabled))
struct GraphEngineTests {
    let logger = TestEnvironment.logger

    @Test("worker: upserts keep stored values, parents refuse cycles, facts link once and Qdrant node_ids follow, edges ignore order when undirected")
    func worker() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker
            #expect(worker.hasWriteDB && !worker.hasGraphDB)
            let ai = try await worker.createNode(concept: "Artificial Intelligence", definition: "Machines that think")
            #expect(ai.id == GraphKeys.id(forKey: "artificial-intelligence"))
            let again = try await worker.createNode(concept: "Artificial Intelligence")
            #expect(again.definition == "Machines that think")
            #expect(again.updatedAt > ai.updatedAt)
            await #expect(throws: KTGraphError.self) { try await worker.createNode(concept: "!!!") }

            let ml = try await worker.createNode(concept: "Machine Learning", parentID: ai.id)
            #expect(ml.parentID == ai.id)
            let dl = try await worker.createNode(concept: "Deep Learning", parentID: ml.id)
            let cycle = await #expect(throws: KTGraphError.self) { try await worker.setParent(nodeID: ai.id, parentID: dl.id) }
            #expect(cycle?.code == .invalidParentChain)
            await #expect(throws: KTGraphError.self) { try await worker.setParent(nodeID: ai.id, parentID: ai.id) }
            #expect(try await worker.chainReachesRoot(nodeID: dl.id))
            #expect(try await worker.children(of: ai.id).map(\.concept) == ["Machine Learning"])

            let fact = try await worker.createFact(content: "Neural networks learn representations", factType: "claim")
            try await worker.linkFactToNode(nodeID: dl.id, factID: fact.id)
            try await worker.linkFactToNode(nodeID: dl.id, factID: fact.id)
            try await worker.linkFactToNode(nodeID: ml.id, factID: fact.id)
            #expect(try await worker.nodeFacts(of: dl.id).map(\.id) == [fact.id])
            #expect(try await worker.node(id: dl.id)?.factCount == 1)
            var payload = try await f.qdrant.retrieve(f.collections.facts, ids: [fact.id]).first?.payload?["node_ids"]
            #expect(payload == .array([dl.id, ml.id].map(\.uuidString).map { .string($0.lowercased()) }.sorted { "\($0)" < "\($1)" }))
            try await worker.unlinkFactFromNode(nodeID: ml.id, factID: fact.id)
            payload = try await f.qdrant.retrieve(f.collections.facts, ids: [fact.id]).first?.payload?["node_ids"]
            #expect(payload == .array([.string(dl.id.uuidString.lowercased())]))

            let forward = try await worker.createEdge(sourceID: ml.id, targetID: ai.id, relationshipType: "related", weight: 0.7)
            let backward = try await worker.createEdge(sourceID: ai.id, targetID: ml.id, relationshipType: "related", weight: 0.9)
            #expect(forward.id == backward.id)
            #expect(forward.id == GraphKeys.id(forKey: "related:artificial-intelligence--machine-learning"))
            let directed = try await worker.createEdge(sourceID: dl.id, targetID: ai.id, relationshipType: "draws_from")
            #expect(directed.id != (try await worker.createEdge(sourceID: ai.id, targetID: dl.id, relationshipType: "draws_from")).id)
            #expect(try await worker.edges(of: ai.id).count == 3)
            #expect(try await worker.edges(of: dl.id, direction: .outgoing).count == 1)

            let dimension = try await worker.addDimension(nodeID: ai.id, modelID: "Grok 4.1", content: "A field of CS", confidence: 0.8, factIDs: [fact.id])
            #expect(dimension.id == GraphKeys.id(forKey: "artificial-intelligence:grok-4-1:0"))
            #expect(try await worker.dimensions(of: ai.id).first?.factIDs == [fact.id])

            #expect(try await worker.searchNodes("learn").map(\.concept) == ["Deep Learning", "Machine Learning"])
            #expect(try await worker.searchNodes("50%_off").isEmpty)
            #expect(try await worker.searchNodesByTrigram("Machine Lerning", threshold: 0.3).first?.concept == "Machine Learning")
            let similar = try await worker.findSimilarNodes(embedding: try await f.embedder.embed("Deep Learning"), threshold: 0.5)
            #expect(similar.first?.id == dl.id)
            let pool = try await worker.searchFactPool(embedding: try await f.embedder.embed("neural networks learn"), threshold: 0.2)
            #expect(pool.first?.fact.id == fact.id)

            await worker.incrementAccessCount(nodeID: ai.id)
            await worker.incrementAccessCount(nodeID: ai.id)
            let counted = try #require(try await worker.node(id: ai.id))
            #expect(counted.accessCount == 2)
            #expect(worker.computeRichness(counted, factCount: 3, dimensionCount: 1) == min(1, 0.3 + 0.2 + 0.02))
            #expect(!worker.isNodeStale(counted))
            #expect(worker.isNodeStale(counted, now: counted.updatedAt.addingTimeInterval(31 * 86_400)))
        }
    }

    @Test("sync then read: nodes, facts, edges, dimensions, counters, listing, neighbours, subgraph, shortest paths, vector search")
    func syncAndRead() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker
            let a = try await worker.createNode(concept: "Alpha")
            let b = try await worker.createNode(concept: "Beta", parentID: a.id)
            let c = try await worker.createNode(concept: "Gamma", parentID: a.id)
            let d = try await worker.createNode(concept: "Delta")
            let fact = try await worker.createFact(content: "Alpha precedes Beta")
            try await worker.linkFactToNode(nodeID: b.id, factID: fact.id)
            let ab = try await worker.createEdge(sourceID: a.id, targetID: b.id, factIDs: [fact.id])
            try await worker.createEdge(sourceID: b.id, targetID: c.id)
            try await worker.createEdge(sourceID: c.id, targetID: d.id)
            try await worker.addDimension(nodeID: b.id, modelID: "m1", content: "Beta seen by m1", factIDs: [fact.id])
            await worker.incrementUpdateCount(nodeID: b.id)

            let report = try await f.sync().syncCycle()
            #expect(report.applied["write_nodes"] == 4)
            #expect(report.deferred == 0 && report.failed == 0)
            #expect(try await f.sync().syncCycle().totalApplied == 0)

            let reader = f.reader
            let beta = try #require(try await reader.node(id: b.id))
            #expect(beta.parentID == a.id)
            #expect(beta.factCount == 1 && beta.edgeCount == 2 && beta.dimensionCount == 1 && beta.updateCount == 1)
            #expect(try await reader.node(id: a.id)?.childCount == 2)
            #expect(try await reader.nodeFacts(of: b.id).map(\.content) == ["Alpha precedes Beta"])
            #expect(try await reader.edge(id: ab.id)?.factIDs == [fact.id])
            #expect(try await reader.dimensions(of: b.id).first?.factIDs == [fact.id])
            #expect(try await reader.listNodes(limit: 2, sort: .concept).map(\.concept) == ["Alpha", "Beta"])
            #expect(try await reader.listNodes(offset: 2, limit: 2, sort: .concept).map(\.concept) == ["Delta", "Gamma"])
            #expect(try await reader.listNodes(sort: .edgeCount).first.map { [b.id, c.id].contains($0.id) } == true)
            #expect(try await reader.countNodes(search: "a") == 4)
            #expect(try await reader.countNodes(search: "et") == 1)
            #expect(Set(try await reader.neighbors(of: a.id, depth: 1).map(\.concept)) == ["Beta"])
            #expect(Set(try await reader.neighbors(of: a.id, depth: 2).map(\.concept)) == ["Beta", "Gamma"])
            let sub = try await reader.subgraph(nodeIDs: [c.id], depth: 1)
            #expect(Set(sub.nodes.map(\.concept)) == ["Alpha", "Beta", "Gamma", "Delta"])
            #expect(sub.edges.count == 3)
            let paths = try await reader.shortestPaths(from: a.id, to: d.id)
            #expect(paths.map { $0.map(\.nodeID) } == [[a.id, b.id, c.id, d.id]])
            #expect(try await reader.shortestPaths(from: a.id, to: d.id, maxDepth: 2).isEmpty)
            let found = try await reader.searchFacts(embedding: try await f.embedder.embed("Alpha precedes Beta"), threshold: 0.5)
            #expect(found.first?.fact.id == fact.id)
            #expect(try await reader.searchFactsText("precedes").count == 1)

            // Transaction mode: the caller owns the transaction; a rollback undoes admin writes.
            await #expect(throws: KTGraphError.self) {
                try await f.graphSession.withTransaction(logger: logger) { t in
                    let engine = ReadGraphEngine(transaction: t, collections: f.collections, logger: logger)
                    try await engine.createNode(concept: "Rolled Back")
                    throw KTGraphError(code: .invalidArgument, message: "roll back")
                }
            }
            #expect(try await reader.searchNodes("Rolled").isEmpty)

            // History and merge.
            #expect(try await reader.saveVersion(nodeID: b.id).versionNumber == 1)
            #expect(try await reader.saveVersion(nodeID: b.id).versionNumber == 2)
            #expect(try await reader.history(of: b.id).count == 2)
            let merged = try await reader.mergeNodes(keep: d.id, absorb: c.id)
            #expect(merged.edgeCount == 1)
            #expect(try await reader.node(id: c.id) == nil)
            #expect(try await reader.edges(of: d.id).first.map { Set([$0.sourceID, $0.targetID]) } == Set([b.id, d.id]))
        }
    }

    @Test("engines: node updates, fact listings by source and domain, stances, shared and similar facts, trigram search, edge listings")
    func listingsAndSearches() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker, reader = f.reader
            let a = try await worker.createNode(concept: "Alpha"), b = try await worker.createNode(concept: "Beta"), c = try await worker.createNode(concept: "Gamma")
            let updated = try await worker.updateNode(id: a.id, definition: "first letter", maxContentTokens: 300)
            #expect(updated.definition == "first letter")
            await #expect(throws: KTGraphError.self) { try await worker.updateNode(id: UUID(), definition: "x") }
            await #expect(throws: KTGraphError.self) { try await worker.updateNode(id: a.id, maxContentTokens: 0) }
            let f1 = try await worker.createFact(content: "The alpha particle is a helium nucleus")
            let f2 = try await worker.createFact(content: "Beta decay emits an electron")
            let f3 = try await worker.createFact(content: "Gamma rays are photons", factType: "measurement")
            try await worker.linkFacts([(a.id, f1.id), (a.id, f2.id), (b.id, f1.id), (b.id, f2.id), (c.id, f2.id), (c.id, f3.id)])
            let science = try await worker.upsertRawSource(GraphRawSource(uri: "https://www.science.example/article", contentHash: "h1"))
            try await worker.addFactSource(factID: f1.id, source: science, authorOrg: "Physics Institute")
            try await worker.recordFactRejection(nodeID: a.id, factID: f3.id)

            // Worker-side searches (write-db and Qdrant).
            #expect(try await worker.findNodesSharingFacts(with: a.id).map { [$0.node.concept: $0.count] } == [["Beta": 2], ["Gamma": 1]])
            #expect(try await worker.searchFactPoolTrigram("alpha particle helium", threshold: 0.2).map(\.id) == [f1.id])
            #expect(try await worker.searchFactPoolText("a", excludingRejectedFor: a.id).contains { $0.id == f3.id } == false)
            #expect(try await worker.nodeFactsWithSources(of: a.id).map { $0.sources.count }.sorted() == [0, 1])
            let similar = try await worker.findNodesWithSimilarFacts(factEmbeddings: [try await f.embedder.embed("Gamma rays are photons")], excluding: b.id, threshold: 0.99)
            #expect(similar.map(\.node.id) == [c.id])

            try await f.sync().syncUntilIdle()
            #expect(try await reader.node(id: a.id)?.definition == "first letter")
            #expect(try await reader.countFacts() == 3)
            #expect(try await reader.listFacts(factType: "measurement").map(\.id) == [f3.id])
            #expect(try await reader.listFacts(authorOrg: "physics").map(\.id) == [f1.id])
            #expect(try await reader.countFacts(sourceDomain: "science.example") == 1)
            #expect(try await reader.countFacts(sourceDomain: "other.example") == 0)
            #expect(try await reader.listFacts(search: "100%").isEmpty)
            #expect(try await reader.searchFactsTrigram("gamma rays photons", threshold: 0.2).map(\.id) == [f3.id])
            #expect(try await reader.rejectedFactIDs(nodeID: a.id) == [f3.id])
            #expect(try await reader.findNodesSharingFacts(with: a.id).map(\.count) == [2, 1])

            // Stances (admin links) and the perspective summary.
            try await reader.linkFactToNode(nodeID: c.id, factID: f1.id, stance: "supports")
            try await reader.linkFactToNode(nodeID: c.id, factID: f2.id, stance: "challenges")
            await #expect(throws: KTGraphError.self) { try await reader.linkFactToNode(nodeID: c.id, factID: UUID()) }
            #expect(try await reader.perspectiveSummary(of: c.id) == PerspectiveSummary(supporting: 1, challenging: 1, neutral: 0, unclassified: 1))
            #expect(try await reader.node(id: c.id)?.factCount == 3)

            // Edges: listings, counts, and the view from one node.
            try await worker.createEdge(sourceID: a.id, targetID: b.id, relationshipType: "related", weight: 0.9, factIDs: [f1.id, f2.id])
            try await worker.createEdge(sourceID: a.id, targetID: c.id, relationshipType: "contrasts", weight: 0.4)
            try await f.sync().syncUntilIdle()
            #expect(try await reader.countEdges() == 2)
            #expect(try await reader.countEdges(relationshipType: "contrasts") == 1)
            #expect(try await reader.listEdges(nodeID: b.id).count == 1)
            let view = try await reader.edgesWithTargets(of: a.id, limit: 1)
            #expect(view.total == 2)
            #expect(view.edges.map(\.otherConcept) == ["Beta"])

            // Fact administration.
            #expect(try await reader.updateFact(id: f3.id, content: "Gamma rays are high-energy photons").content.contains("high-energy"))
            await #expect(throws: KTGraphError.self) { try await reader.updateFact(id: UUID(), content: "x") }
            #expect(try await reader.deleteFact(id: f2.id))
            #expect(try await reader.node(id: a.id)?.factCount == 1)
        }
    }
}
