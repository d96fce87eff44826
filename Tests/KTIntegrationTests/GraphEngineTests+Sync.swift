import Foundation
import KTConfig
import KTDB
import KTGraph
import KTQdrant
import Logging
import Testing

/// The sync of every table, deferrals and deletions, LLM usage, and the export reads.
extension GraphEngineTests {
    @Test("sync: raw sources, fact sources, prohibited chunks, convergence reports and versions arrive, wait for their parents, follow deletions and re-creations")
    func syncSourcesReportsVersions() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker, reader = f.reader
            let node = try await worker.createNode(concept: "Photosynthesis")
            let fact = try await worker.createFact(content: "Plants turn light into sugar")
            try await worker.linkFactToNode(nodeID: node.id, factID: fact.id)
            let paper = try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/paper", title: "Paper", contentHash: "hash-paper"))
            #expect(paper.id == GraphKeys.sourceID(uri: "https://example.org/paper"))
            // Stored values survive an upsert without them; a hash held by another source is refused.
            #expect(try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/paper")).title == "Paper")
            await #expect(throws: KTGraphError.self) { try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/other", contentHash: "hash-paper")) }
            let cited = try await worker.addFactSource(factID: fact.id, source: paper, contextSnippet: "light", authorOrg: "Lab")
            #expect(try await worker.addFactSource(factID: fact.id, source: paper, attribution: "p. 3").id == cited.id)
            await #expect(throws: KTGraphError.self) { try await worker.addFactSource(factID: UUID(), source: paper) }
            try await worker.recordProhibitedChunk(sourceContentHash: "hash-paper", chunkText: "refused", modelID: "m1")
            // A chunk of a source write-db does not have yet waits.
            try await worker.recordProhibitedChunk(sourceContentHash: "hash-later", chunkText: "also refused")
            try await worker.setConvergenceReport(nodeID: node.id, score: 0.75, convergedClaims: ["a", "b"], recommendedContent: "text")
            await #expect(throws: KTGraphError.self) { try await worker.setConvergenceReport(nodeID: node.id, score: 1.5) }
            let v1 = try await worker.saveVersion(nodeID: node.id)
            let v2 = try await worker.saveVersion(nodeID: node.id, isDefault: true)
            #expect((v1.versionNumber, v2.versionNumber) == (1, 2))
            #expect(try await worker.history(of: node.id).map(\.versionNumber) == [1, 2])

            let report = try await f.sync().syncUntilIdle()
            #expect(report.deferred >= 1)
            let stored = try #require(try await reader.rawSource(id: paper.id))
            #expect(stored.title == "Paper")
            #expect((stored.factCount, stored.prohibitedChunkCount) == (1, 1))
            let sources = try await reader.factSources(of: fact.id)
            #expect(sources.map(\.uri) == ["https://example.org/paper"])
            #expect(sources.first?.attribution == "p. 3")
            #expect(sources.first?.contextSnippet == "light")
            #expect(try await reader.nodeFactsWithSources(of: node.id).map { $0.sources.count } == [1])
            let graphReport = try #require(try await reader.convergenceReport(of: node.id))
            #expect(graphReport.score == 0.75)
            #expect(graphReport.convergedClaims == ["a", "b"])
            #expect(try await f.graphSession.query("SELECT convergence_score FROM nodes WHERE id = \(node.id)", logger: logger).first?.decode(0, as: Double?.self) == 0.75)
            let history = try await reader.history(of: node.id)
            #expect(history.map(\.versionNumber) == [1, 2])
            #expect(history.map(\.isDefault) == [false, true])
            #expect(history.first?.snapshot.contains("Photosynthesis") == true)

            // The waiting chunk arrives with its source.
            let later = try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/later", contentHash: "hash-later"))
            try await f.sync().syncUntilIdle()
            #expect(try await reader.rawSource(id: later.id)?.prohibitedChunkCount == 1)
            #expect(try await f.writeSession.query("SELECT count(*) FROM sync_failures", logger: logger).first?.decode(0, as: Int.self) == 0)

            // Deleting the source removes its citations and chunks from graph-db; storing it again brings them back.
            try await worker.deleteRawSource(id: paper.id)
            try await f.sync().syncUntilIdle()
            #expect(try await reader.rawSource(id: paper.id) == nil)
            #expect(try await reader.factSources(of: fact.id).isEmpty)
            try await worker.upsertRawSource(GraphRawSource(uri: "https://example.org/paper", title: "Paper again", contentHash: "hash-paper"))
            try await f.sync().syncUntilIdle()
            #expect(try await reader.factSources(of: fact.id).count == 1)
            #expect(try await reader.rawSource(id: paper.id).map { ($0.factCount, $0.prohibitedChunkCount) } ?? (0, 0) == (1, 1))

            // Deleting a fact source, a report and a version propagates; the node's score follows.
            try await worker.deleteFactSource(id: cited.id)
            try await f.writeSession.query("DELETE FROM write_convergence_reports", logger: logger)
            try await f.writeSession.query("DELETE FROM write_node_versions WHERE version_number = 1", logger: logger)
            try await f.sync().syncUntilIdle()
            #expect(try await reader.factSources(of: fact.id).isEmpty)
            #expect(try await reader.rawSource(id: paper.id)?.factCount == 0)
            #expect(try await reader.convergenceReport(of: node.id) == nil)
            #expect(try await f.graphSession.query("SELECT convergence_score FROM nodes WHERE id = \(node.id)", logger: logger).first?.decode(0, as: Double?.self) == nil)
            #expect(try await reader.history(of: node.id).map(\.versionNumber) == [2])

            // A node deleted and re-created gets its report and versions back.
            try await worker.setConvergenceReport(nodeID: node.id, score: 0.5)
            try await f.sync().syncUntilIdle()
            try await worker.deleteNode(id: node.id)
            try await f.sync().syncUntilIdle()
            #expect(try await reader.history(of: node.id).isEmpty)
            try await worker.createNode(concept: "Photosynthesis")
            try await f.sync().syncUntilIdle()
            #expect(try await reader.convergenceReport(of: node.id)?.score == 0.5)
            #expect(try await reader.history(of: node.id).map(\.versionNumber) == [2])
        }
    }

    @Test("sync: deferred rows arrive once their parent does; deletions, un-links and rejections propagate; one sync per graph at a time")
    func syncCorrectness() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker
            let a = try await worker.createNode(concept: "Root")
            // An edge whose target node is written without a node row yet (as a crashed writer could leave it).
            try await f.writeSession.query(
                """
                INSERT INTO write_edges (key, source_node_key, target_node_key, relationship_type, updated_at)
                VALUES ('related:late--root', 'root', 'late', 'related', clock_timestamp())
                """, logger: logger)
            let first = try await f.sync().syncCycle()
            #expect(first.deferred == 1)
            #expect(try await f.reader.edges(of: a.id).isEmpty)
            let late = try await worker.createNode(concept: "Late")
            try await f.sync().syncUntilIdle()
            #expect(try await f.reader.edges(of: late.id).count == 1)
            #expect(try await f.writeSession.query("SELECT count(*) FROM sync_failures", logger: logger).first?.decode(0, as: Int.self) == 0)

            let fact1 = try await worker.createFact(content: "first")
            let fact2 = try await worker.createFact(content: "second")
            try await worker.linkFacts([(a.id, fact1.id), (a.id, fact2.id)])
            try await worker.addDimension(nodeID: a.id, modelID: "m", content: "x")
            try await f.sync().syncUntilIdle()
            #expect(try await f.reader.node(id: a.id)?.factCount == 2)

            try await worker.unlinkFactFromNode(nodeID: a.id, factID: fact1.id)
            try await worker.recordFactRejection(nodeID: a.id, factID: fact2.id)
            try await worker.deleteDimension(nodeID: a.id, modelID: "m")
            try await f.sync().syncUntilIdle()
            let root = try #require(try await f.reader.node(id: a.id))
            #expect(root.factCount == 0)
            #expect(root.dimensionCount == 0)

            try await worker.deleteFact(id: fact1.id)
            try await worker.deleteNode(id: late.id)
            try await f.sync().syncUntilIdle()
            #expect(try await f.reader.facts(ids: [fact1.id]).isEmpty)
            #expect(try await f.reader.node(id: late.id) == nil)
            #expect(try await f.reader.node(id: a.id)?.edgeCount == 0)

            // Re-creating the deleted node brings its edge back.
            try await worker.createNode(concept: "Late")
            try await f.sync().syncUntilIdle()
            #expect(try await f.reader.node(id: a.id)?.edgeCount == 1)

            // A row graph-db refuses fails alone: its batch is applied row by row, the others
            // arrive, and the bad row waits in the queue (with the graph's slug) until it applies.
            try await f.graphSession.query(
                """
                CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.concept = 'Poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$
                """, logger: logger)
            try await f.graphSession.query("CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON nodes FOR EACH ROW EXECUTE FUNCTION refuse_poison()", logger: logger)
            let fine1 = try await worker.createNode(concept: "Fine one")
            let poison = try await worker.createNode(concept: "Poison")
            let fine2 = try await worker.createNode(concept: "Fine two")
            let poisoned = try await f.sync().syncCycle()
            #expect(poisoned.rowByRowBatches == 1)
            #expect(poisoned.failed == 1)
            #expect(poisoned.applied["write_nodes"] == 2)
            #expect(try await f.reader.node(id: fine1.id) != nil)
            #expect(try await f.reader.node(id: fine2.id) != nil)
            #expect(try await f.reader.node(id: poison.id) == nil)
            let queued = try await f.writeSession.query("SELECT record_key, graph_slug, error_message FROM sync_failures", logger: logger).rows
            #expect(queued.count == 1)
            #expect(try queued.first?.decode(0, as: String.self) == "poison")
            #expect(try queued.first?.decode(1, as: String.self) == f.slug)
            #expect(try queued.first?.decode(2, as: String.self).contains("poisoned row") == true)
            try await f.graphSession.query("DROP TRIGGER refuse_poison ON nodes", logger: logger)
            try await f.writeSession.query("UPDATE sync_failures SET next_retry_at = now() - interval '1 second'", logger: logger)
            let healed = try await f.sync().syncCycle()
            #expect(healed.recovered == 1)
            #expect(try await f.reader.node(id: poison.id) != nil)
            #expect(try await f.writeSession.query("SELECT count(*) FROM sync_failures", logger: logger).first?.decode(0, as: Int.self) == 0)

            // While another process holds the graph's sync lock, a cycle refuses to run.
            try await f.writeSession.withTransaction(logger: logger) { t in
                try await t.query("SELECT pg_advisory_xact_lock(hashtextextended(\("kt-sync:" + f.slug), 0))")
                let busy = await #expect(throws: KTGraphError.self) { try await f.sync().syncCycle() }
                #expect(busy?.code == .syncBusy)
                // Also with a bound measured beforehand (as the service does: the lock is then taken by the pending-work statement).
                let bound = try await SyncBound.measure(on: f.writeSession, logger: logger)
                let busyShared = await #expect(throws: KTGraphError.self) { try await f.sync().syncCycle(bound: bound) }
                #expect(busyShared?.code == .syncBusy)
            }
        }
    }

    @Test("LLM usage: stored once per id, bad records refused, synced last, deletions follow")
    func llmUsage() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker, reader = f.reader
            let when = Date(timeIntervalSince1970: 1_790_000_000.25)
            let first = LLMUsage(
                taskType: "dimension", modelID: "model-a", promptTokens: 1200, completionTokens: 300, costUSD: 0.0042,
                conversationID: "conv-not-a-uuid", messageID: "m-1", workflowRunID: "run-9", createdAt: when)
            let stored = try await worker.recordLLMUsage(first)
            #expect(stored.id == first.id && stored.conversationID == "conv-not-a-uuid" && stored.promptTokens == 1200 && stored.costUSD == 0.0042)
            #expect(abs(stored.createdAt.timeIntervalSince(when)) < 0.000002)
            // A retried write with the same id keeps the first record.
            var retried = first
            retried.promptTokens = 1
            #expect(try await worker.recordLLMUsage(retried).promptTokens == 1200)
            let second = try await worker.recordLLMUsage(LLMUsage(taskType: "definition", modelID: "model-b"))
            for bad in [
                LLMUsage(taskType: "", modelID: "m"), LLMUsage(taskType: "t", modelID: ""), LLMUsage(taskType: "t", modelID: "m", promptTokens: -1),
                LLMUsage(taskType: "t", modelID: "m", costUSD: -0.5), LLMUsage(taskType: "t", modelID: "m", costUSD: .nan),
                LLMUsage(taskType: "t", modelID: "m", conversationID: String(repeating: "c", count: 101)),
                // 100 characters to Swift, 200 to PostgreSQL (e and a combining accent each).
                LLMUsage(taskType: "t", modelID: "m", conversationID: String(repeating: "e\u{301}", count: 100)),
            ] {
                await #expect(throws: KTGraphError.self) { try await worker.recordLLMUsage(bad) }
            }
            #expect(try await worker.llmUsage().count == 2)
            let report = try await f.sync().syncUntilIdle()
            #expect(report.applied["write_llm_usage"] == 2)
            #expect(try await reader.llmUsage(conversationID: "conv-not-a-uuid") == [stored])
            #expect(Set(try await reader.llmUsage().map(\.id)) == [first.id, second.id])
            #expect(try await worker.deleteLLMUsage(id: first.id))
            #expect(try await worker.deleteLLMUsage(id: first.id) == false)
            try await f.sync().syncUntilIdle()
            #expect(try await reader.llmUsage().map(\.id) == [second.id])
        }
    }

    @Test("engines: export pages, batch neighbourhoods, recent edge pairs, nodes by embedding facts, rejection-aware vector search")
    func exportsAndNeighbourhoods() async throws {
        try await GraphFixture.with(logger: logger) { f in
            let worker = f.worker
            let a = try await worker.createNode(concept: "Alpha"), b = try await worker.createNode(concept: "Beta")
            let c = try await worker.createNode(concept: "Gamma", parentID: a.id), d = try await worker.createNode(concept: "Delta")
            var facts: [GraphFact] = []
            for content in ["Alpha one", "Shared by alpha and beta", "Beta and gamma", "Unlinked fact"] { facts.append(try await worker.createFact(content: content)) }
            for (node, fact) in [(a, 0), (a, 1), (b, 1), (b, 2), (c, 2)] { try await worker.linkFactToNode(nodeID: node.id, factID: facts[fact].id) }
            try await worker.recordFactRejection(nodeID: a.id, factID: facts[3].id)
            let ab = try await worker.createEdge(sourceID: a.id, targetID: b.id), ac = try await worker.createEdge(sourceID: a.id, targetID: c.id)
            let probe = try await f.embedder.embed("Beta and gamma")

            // Worker: recent edge pairs, nodes by the facts near an embedding, rejection-aware pool search.
            #expect(try await worker.recentEdgePairs(nodeID: a.id, candidates: [b.id, c.id, d.id]) == [b.id, c.id])
            #expect(try await worker.recentEdgePairs(nodeID: a.id, candidates: [b.id, c.id], stalenessDays: 0).isEmpty)
            await #expect(throws: KTGraphError.self) { try await worker.recentEdgePairs(nodeID: a.id, candidates: [b.id], stalenessDays: -1) }
            // Every fact scores above -1; a's own facts are left out, so b and c remain (one fact each: "Beta and gamma").
            let byFacts = try await worker.findNodesByEmbeddingFacts(embedding: probe, sourceNodeID: a.id, threshold: -1)
            #expect(Set(byFacts.map(\.node.id)) == [b.id, c.id] && byFacts.allSatisfy { $0.count == 1 })
            let pool = try await worker.searchFactPool(embedding: probe, excludingRejectedFor: a.id, limit: 10, threshold: -1)
            #expect(Set(pool.map(\.fact.id)) == Set(facts[0...2].map(\.id)))

            try await f.sync().syncUntilIdle()
            let reader = f.reader
            // Export pages: every row once, in id order, whatever the page size.
            var exported: [GraphNode] = [], after: UUID?
            while true {
                let page = try await reader.exportNodes(after: after, limit: 3)
                guard let last = page.last else { break }
                exported += page
                after = last.id
            }
            #expect(exported.map(\.id) == [a, b, c, d].map(\.id).sorted { $0.uuidString < $1.uuidString })
            let firstEdge = try await reader.exportEdges(limit: 1)
            #expect(firstEdge.count == 1)
            #expect(Set(firstEdge + (try await reader.exportEdges(after: firstEdge[0].id, limit: 5))).map(\.id).count == 2)
            let withSources = try await reader.exportFactsWithSources()
            #expect(Set(withSources.map(\.fact.id)) == Set(facts.map(\.id)))
            await #expect(throws: KTGraphError.self) { try await reader.exportNodes(limit: 0) }

            // Batch neighbourhoods.
            let around = try await reader.neighborsWithConcepts(of: [a.id, d.id])
            #expect(Set(around[a.id, default: []].map(\.concept)) == ["Beta", "Gamma"])
            #expect(Set(around[a.id, default: []].map(\.edge.id)) == [ab.id, ac.id])
            #expect(around[d.id] == [])
            #expect(try await reader.countChildren(of: a.id) == 1)

            // Reader: the same searches over node_facts.
            let readByFacts = try await reader.findNodesByEmbeddingFacts(embedding: probe, sourceNodeID: a.id, threshold: -1)
            #expect(Set(readByFacts.map(\.node.id)) == [b.id, c.id])
            let similar = try await reader.findNodesWithSimilarFacts(factEmbeddings: [probe], excluding: a.id, threshold: -1)
            #expect(similar.first?.node.id == b.id && similar.first?.count == 2)
            let readPool = try await reader.searchFacts(embedding: probe, excludingRejectedFor: a.id, limit: 10, threshold: -1)
            #expect(Set(readPool.map(\.fact.id)) == Set(facts[0...2].map(\.id)))
        }
    }
}
