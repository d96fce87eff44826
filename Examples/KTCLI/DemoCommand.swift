import ArgumentParser
import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging

/// `kt demo`: the shortest proof of the whole path on any graph, wherever it lives: write a few
/// nodes, facts and edges through the WorkerGraphEngine (write-db + Qdrant), sync, and read them
/// back through the ReadGraphEngine (graph-db + Qdrant).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Write through WorkerGraphEngine, sync, read back through ReadGraphEngine.")

    @Option(help: "Graph slug (default: the default graph).") var graph: String?
    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            let logger = environment.logger
            try await environment.withSystem { system in
                let report = try await system.prepare()
                print("migrations applied: \(report.appliedMigrations)")
                let sessions = try await system.sessions(slug: graph ?? "default")
                print("graph '\(sessions.graph.slug)': schema \(sessions.targets.schema), collections \(sessions.collections.prefix.isEmpty ? "(no prefix)" : sessions.collections.prefix)*")
                do {
                    try await sessions.qdrant.ensureGraphCollections(sessions.collections, vectorSize: environment.settings.embeddingDimensions)
                } catch {
                    print("Qdrant unavailable (\(error)); vectors are skipped")
                }
                let worker = sessions.workerEngine(embedder: environment.settings.embedder, logger: logger)
                let photosynthesis = try await worker.createNode(concept: "Photosynthesis", definition: "How plants turn light into sugar")
                let chlorophyll = try await worker.createNode(concept: "Chlorophyll", parentID: photosynthesis.id)
                let sunlight = try await worker.createNode(concept: "Sunlight")
                let fact = try await worker.createFact(content: "Chlorophyll absorbs mostly blue and red light", factType: .claim)
                try await worker.linkFactToNode(nodeID: chlorophyll.id, factID: fact.id)
                try await worker.createEdge(sourceID: photosynthesis.id, targetID: sunlight.id, relationshipType: .related, weight: 0.9, factIDs: [fact.id])
                try await worker.createEdge(sourceID: chlorophyll.id, targetID: sunlight.id, relationshipType: .related, weight: 0.7)
                print("wrote 3 nodes, 1 fact, 2 edges to write-db")

                let sync = try await sessions.syncEngine(settings: environment.settings.sync, logger: logger).syncUntilIdle()
                print("synced: \(sync.totalApplied) rows applied, \(sync.deferred) deferred, \(sync.failed) failed")

                let reader = sessions.readEngine(logger: logger)
                for node in try await reader.nodes(ids: [photosynthesis.id, chlorophyll.id, sunlight.id]) {
                    print("  node \(node.concept): \(node.factCount) facts, \(node.edgeCount) edges, \(node.childCount) children")
                }
                for edge in try await reader.edges(of: sunlight.id) {
                    print("  edge \(edge.relationshipType) weight \(edge.weight) facts \(edge.factIDs.count)")
                }
                for fact in try await reader.nodeFacts(of: chlorophyll.id) { print("  fact of Chlorophyll: \(fact.content)") }
                let paths = try await reader.shortestPaths(from: chlorophyll.id, to: photosynthesis.id)
                print("  shortest path Chlorophyll → Photosynthesis: \(paths.first?.count ?? 0) nodes")
                let found = try await reader.searchFacts(embedding: try await environment.settings.embedder.embed("chlorophyll absorbs light"), threshold: 0.2)
                print("  vector search 'chlorophyll absorbs light': \(found.first.map { "\($0.fact.content) (score \(String(format: "%.2f", $0.score)))" } ?? "no hit")")
            }
        }
    }
}
