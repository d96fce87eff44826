import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import Testing

/// What a read suite saw through one engine: comparable values only (ids, concepts, contents).
struct ReadSummary: Equatable {
    var node: String?
    var nodes: Set<String>
    var children: [String]
    var edges: Set<String>
    var dimensions: [String]
    var facts: Set<String>
    var nodeFacts: Set<String>
    var sourcesOfFacts: [Int]
    var factSources: [String]
    var rawSource: String?
    var convergence: Double?
    var rejected: Set<UUID>
    var history: [Int]
    var search: [String]
    var searchOfType: [String]
    var trigram: [String]
    var similar: [String]
    var sharing: [String]
    var missing: Bool
}

/// One read suite, run against `any GraphReading`: the worker (write-db) and the reader
/// (graph-db) must answer it the same way once the sync has run (issue 19, item 3).
@Suite("GraphReading: one read suite over both engines (real servers)", .enabled(if: TestEnvironment.isEnabled))
struct GraphReadingTests {
    let logger = TestEnvironment.logger

    struct Fixture: Sendable {
        var photosynthesis: UUID, chlorophyll: UUID, sunlight: UUID
        var absorbs: UUID, green: UUID
        var source: UUID
        var embedding: [Float]
    }

    static func read(_ engine: any GraphReading, _ f: Fixture) async throws -> ReadSummary {
        ReadSummary(
            node: try await engine.node(id: f.chlorophyll)?.concept,
            nodes: Set(try await engine.nodes(ids: [f.photosynthesis, f.sunlight, UUID()]).map(\.concept)),
            children: try await engine.children(of: f.photosynthesis).map(\.concept),
            edges: Set(try await engine.edges(of: f.sunlight).map { "\($0.relationshipType):\($0.weight):\($0.factIDs.count)" }),
            dimensions: try await engine.dimensions(of: f.chlorophyll).map(\.content),
            facts: Set(try await engine.facts(ids: [f.absorbs, f.green]).map(\.content)),
            nodeFacts: Set(try await engine.nodeFacts(of: f.chlorophyll).map(\.content)),
            sourcesOfFacts: try await engine.nodeFactsWithSources(of: f.chlorophyll).map(\.sources.count).sorted(),
            factSources: try await engine.factSources(of: f.absorbs).map { $0.attribution ?? "" },
            rawSource: try await engine.rawSource(id: f.source)?.uri,
            convergence: try await engine.convergenceReport(of: f.chlorophyll)?.score,
            rejected: try await engine.rejectedFactIDs(nodeID: f.photosynthesis),
            history: try await engine.history(of: f.chlorophyll).map(\.versionNumber),
            search: try await engine.searchNodes("phyll").map(\.concept),
            searchOfType: try await engine.searchNodes("s", limit: 10, nodeType: "entity").map(\.concept),
            trigram: try await engine.searchNodesByTrigram("Chlorophyl").map(\.concept),
            similar: try await engine.findSimilarNodes(embedding: f.embedding, threshold: 0.3, limit: 10, nodeType: "concept").map(\.concept),
            sharing: try await engine.findNodesSharingFacts(with: f.chlorophyll, limit: 10).map(\.node.concept),
            missing: try await engine.node(id: UUID()) == nil)
    }

    @Test("the worker before and the reader after the sync answer every shared read the same, with the expected values")
    func sameAnswers() async throws {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let slug = TestEnvironment.uniqueName("reading")
                try await system.provisioner.createGraph(slug: slug, name: "Reading", databaseKey: "shared")
                let worker = try await system.workerEngine(slug: slug, logger: logger)
                let embedding: [Float] = [1, 0.5, 0, 0, 0, 0, 0, 1]
                let photosynthesis = try await worker.createNode(concept: "Photosynthesis", embedding: embedding)
                let chlorophyll = try await worker.createNode(concept: "Chlorophyll", parentID: photosynthesis.id, embedding: embedding.map { $0 * 0.9 + 0.05 })
                let sunlight = try await worker.createNode(concept: "Sunlight", nodeType: "entity")
                let absorbs = try await worker.createFact(content: "Chlorophyll absorbs blue and red light", embedding: embedding)
                let green = try await worker.createFact(content: "Leaves look green")
                for (node, fact) in [(chlorophyll.id, absorbs.id), (chlorophyll.id, green.id), (photosynthesis.id, absorbs.id)] {
                    try await worker.linkFactToNode(nodeID: node, factID: fact)
                }
                try await worker.recordFactRejection(nodeID: photosynthesis.id, factID: green.id)
                try await worker.createEdge(sourceID: photosynthesis.id, targetID: sunlight.id, relationshipType: "needs", weight: 0.9, factIDs: [absorbs.id])
                _ = try await worker.addDimension(nodeID: chlorophyll.id, modelID: "model-a", content: "a pigment", factIDs: [absorbs.id])
                let source = try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/leaf", title: "Leaf"))
                _ = try await worker.addFactSource(factID: absorbs.id, source: source, attribution: "botany")
                _ = try await worker.setConvergenceReport(nodeID: chlorophyll.id, score: 0.75)
                _ = try await worker.saveVersion(nodeID: chlorophyll.id)
                let fixture = Fixture(
                    photosynthesis: photosynthesis.id, chlorophyll: chlorophyll.id, sunlight: sunlight.id, absorbs: absorbs.id, green: green.id,
                    source: source.id, embedding: embedding)

                let written = try await Self.read(worker, fixture)
                try await system.sessions(slug: slug).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                let synced = try await Self.read(try await system.readEngine(slug: slug, logger: logger), fixture)
                #expect(written == synced)

                // And what both said is what was written.
                #expect(synced.node == "Chlorophyll" && synced.missing)
                #expect(synced.nodes == ["Photosynthesis", "Sunlight"])
                #expect(synced.children == ["Chlorophyll"])
                #expect(synced.edges == ["needs:0.9:1"])
                #expect(synced.dimensions == ["a pigment"])
                #expect(synced.facts == ["Chlorophyll absorbs blue and red light", "Leaves look green"])
                #expect(synced.nodeFacts == synced.facts)
                #expect(synced.sourcesOfFacts == [0, 1])
                #expect(synced.factSources == ["botany"])
                #expect(synced.rawSource == "https://example.org/leaf")
                #expect(synced.convergence == 0.75)
                #expect(synced.rejected == [green.id])
                #expect(synced.history == [1])
                #expect(synced.search == ["Chlorophyll"])
                #expect(synced.searchOfType == ["Sunlight"])
                #expect(synced.trigram.first == "Chlorophyll")
                #expect(synced.similar.contains("Chlorophyll") && synced.similar.contains("Photosynthesis"))
                #expect(synced.sharing == ["Photosynthesis"])
            }
        }
    }
}
