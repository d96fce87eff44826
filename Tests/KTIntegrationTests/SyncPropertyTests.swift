import Foundation
import KTConfig
import KTDB
import KTGraph
import Logging
import Synchronization
import Testing

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Shared state of the random writers.
final class PropertyState: Sendable {
    let facts = Mutex<[UUID]>([])
    let writersDone = Atomic<Int>(0)
    let rowByRowBatches = Atomic<Int>(0)
}

@Suite("Sync property: graph-db equals the projection of write-db", .enabled(if: TestEnvironment.isEnabled))
struct SyncPropertyTests {
    let logger = TestEnvironment.logger

    /// One random worker operation; errors a worker would see (missing node, cycle) are expected.
    static func randomOperation(_ worker: WorkerGraphEngine, _ rng: inout SeededGenerator, concepts: [String], state: PropertyState) async {
        let concept = concepts.randomElement(using: &rng)!
        let other = concepts.randomElement(using: &rng)!
        let id = GraphKeys.id(forKey: GraphKeys.nodeKey(concept))
        let otherID = GraphKeys.id(forKey: GraphKeys.nodeKey(other))
        let knownFacts = state.facts.withLock { $0 }
        let fact = knownFacts.randomElement(using: &rng)
        do {
            switch Int.random(in: 0..<104, using: &rng) {
            case 0..<18: try await worker.createNode(concept: concept, definition: Bool.random(using: &rng) ? "def \(Int.random(in: 0..<9, using: &rng))" : nil)
            case 18..<28:
                let created = try await worker.createFact(content: "fact \(UInt32.random(in: 0...UInt32.max, using: &rng))")
                state.facts.withLock { $0.append(created.id) }
            case 28..<42: if let fact { try await worker.linkFactToNode(nodeID: id, factID: fact) }
            case 42..<50: if let fact { try await worker.unlinkFactFromNode(nodeID: id, factID: fact) }
            case 50..<62:
                try await worker.createEdge(
                    sourceID: id, targetID: otherID, relationshipType: Bool.random(using: &rng) ? "related" : "draws_from",
                    weight: Double(Int.random(in: 1...9, using: &rng)) / 10, factIDs: fact.map { [$0] } ?? [])
            case 62..<67:
                let edges = try await worker.edges(of: id)
                if let edge = edges.randomElement(using: &rng) { try await worker.deleteEdge(edge) }
            case 67..<72: try await worker.deleteNode(id: id)
            case 72..<75: if let fact { try await worker.deleteFact(id: fact) }
            case 75..<83:
                try await worker.addDimension(
                    nodeID: id, modelID: ["m1", "m2"].randomElement(using: &rng)!, content: "dim \(Int.random(in: 0..<99, using: &rng))",
                    factIDs: fact.map { [$0] } ?? [])
            case 83..<86: try await worker.deleteDimension(nodeID: id, modelID: "m1")
            case 86..<92: try await worker.setParent(nodeID: id, parentID: Bool.random(using: &rng) ? otherID : nil)
            case 92..<95: if let fact { try await worker.recordFactRejection(nodeID: id, factID: fact) }
            case 95..<100: await worker.incrementAccessCount(nodeID: id)
            case 100..<103:
                // Ids from a small pool: a record may repeat one (kept as first recorded) or follow its deletion.
                let usage = LLMUsage(
                    id: GraphKeys.id(forKey: "usage-\(Int.random(in: 0..<12, using: &rng))"), taskType: "property", modelID: "m\(Int.random(in: 0..<3, using: &rng))",
                    promptTokens: Int.random(in: 0..<500, using: &rng), conversationID: Bool.random(using: &rng) ? "c1" : nil)
                _ = try await worker.recordLLMUsage(usage)
            default: _ = try await worker.deleteLLMUsage(id: GraphKeys.id(forKey: "usage-\(Int.random(in: 0..<12, using: &rng))"))
            }
        } catch is KTGraphError {
            // Missing node, self-edge, cycle: the worker refuses; nothing was written.
        } catch {
            Issue.record("unexpected error: \(String(reflecting: error))")
        }
    }

    /// `url` logged in as `role` (the test roles share the `kt` password).
    static func url(_ url: DatabaseURL, as role: String) -> DatabaseURL {
        var url = url
        url.user = role
        return url
    }

    @Test(
        "thousands of random writes by two workers, interleaved with concurrent sync cycles, converge to the projection; the workers write as a role that is neither the sync's nor a superuser",
        arguments: [UInt64(7), 2026])
    func property(seed: UInt64) async throws {
        try await GraphFixture.with(logger: logger) { f in
            try await TestEnvironment.withPool(Self.url(f.writeURL, as: "kt_writer"), size: 4, maxOverflow: 4) { writerPool in
                try await TestEnvironment.withPool(Self.url(f.writeURL, as: "kt_syncer"), size: 4, maxOverflow: 4) { syncerPool in
                    var f = f
                    let writerSession = DatabaseSession(pool: writerPool, schema: f.writeSession.schema)
                    f.writeSession = DatabaseSession(pool: syncerPool, schema: f.writeSession.schema)  // the sync's role, with pg_read_all_stats
                    try await property(seed: seed, f, writerSession: writerSession)
                }
            }
        }
    }

    func property(seed: UInt64, _ f: GraphFixture, writerSession: DatabaseSession) async throws {
        do {
            let worker = WorkerGraphEngine(writeSession: writerSession, collections: f.collections, logger: logger)  // PostgreSQL only: the property is about the sync
            let concepts = (0..<30).map { "Concept \($0)" }
            let state = PropertyState()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<2 {
                    group.addTask {
                        var rng = SeededGenerator(state: seed &+ UInt64(writer))
                        for _ in 0..<1200 { await Self.randomOperation(worker, &rng, concepts: concepts, state: state) }
                        state.writersDone.add(1, ordering: .sequentiallyConsistent)
                    }
                }
                group.addTask {
                    // A small batch size forces many partial batches while the writers run.
                    while state.writersDone.load(ordering: .sequentiallyConsistent) < 2 {
                        state.rowByRowBatches.add(try await f.sync(batchSize: 37).syncCycle().rowByRowBatches, ordering: .relaxed)
                    }
                }
                try await group.waitForAll()
            }
            state.rowByRowBatches.add(try await f.sync(batchSize: 37).syncUntilIdle(maxCycles: 500).rowByRowBatches, ordering: .relaxed)
            try await assertProjection(f)
            // The set-based path alone produced the projection (no batch needed the row-by-row fallback).
            #expect(state.rowByRowBatches.load(ordering: .relaxed) == 0)
        }
    }

    @Test("the sync never passes a row another role has not committed: without pg_read_all_stats it refuses, naming the grant; with it, the row arrives after its commit")
    func watermarkUnderSeparateRoles() async throws {
        try await GraphFixture.with(logger: logger) { f in
            // A writer role holds an uncommitted node while the sync runs.
            let writer = try await PostgresConnection.connect(configuration: TestEnvironment.connectionConfiguration(Self.url(f.writeURL, as: "kt_writer"), prepared: .disabled), logger: logger)
            try await writer.execute(simple: "BEGIN", logger: logger)
            try await writer.query("SELECT set_config('search_path', \(f.writeSession.schema.rawValue), true)", logger: logger)
            let worker = WorkerGraphEngine(writeSession: f.writeSession, collections: f.collections, logger: logger)
            try await writer.query(
                "INSERT INTO write_nodes (key, node_uuid, concept) VALUES (\(GraphKeys.nodeKey("Hidden")), \(GraphKeys.id(forKey: GraphKeys.nodeKey("Hidden"))), \("Hidden"))", logger: logger)
            try await worker.createNode(concept: "Visible")  // committed, newer than the hidden row's transaction start

            // `kt` cannot see kt_writer's session: the cycle is refused, nothing moves.
            do {
                try await f.sync().syncCycle()
                Issue.record("the sync ran although another role's transaction was hidden from it")
            } catch let error as KTGraphError {
                #expect(error.code == .syncUnsafe)
                #expect(error.message.contains("GRANT pg_read_all_stats TO kt"))
            }
            // kt_syncer (pg_read_all_stats) sees it: it syncs what is committed and keeps its watermark below the open transaction.
            try await TestEnvironment.withPool(Self.url(f.writeURL, as: "kt_syncer"), size: 2, maxOverflow: 2) { syncerPool in
                var syncing = f
                syncing.writeSession = DatabaseSession(pool: syncerPool, schema: f.writeSession.schema)
                try await syncing.sync().syncUntilIdle()
                #expect(try await f.reader.node(id: GraphKeys.id(forKey: GraphKeys.nodeKey("Visible"))) != nil)
                #expect(try await f.reader.node(id: GraphKeys.id(forKey: GraphKeys.nodeKey("Hidden"))) == nil)
                try await writer.execute(simple: "COMMIT", logger: logger)
                await writer.close()
                try await syncing.sync().syncUntilIdle()
                #expect(try await f.reader.node(id: GraphKeys.id(forKey: GraphKeys.nodeKey("Hidden")))?.concept == "Hidden")
            }
        }
    }

    func rows(_ session: DatabaseSession, _ sql: PostgresQuery) async throws -> [PostgresRow] {
        try await session.query(sql, logger: logger).rows
    }

    /// Compares graph-db with what write-db says it must hold, table by table (only the
    /// differences are printed on failure).
    func assertProjection(_ f: GraphFixture) async throws {
        let w = f.writeSession, g = f.graphSession

        // write-db state
        var nodeKeys: [String: (UUID, String, String?, String?, [String])] = [:]
        for row in try await rows(w, "SELECT key, node_uuid, concept, parent_key, definition, fact_ids FROM write_nodes") {
            nodeKeys[try row.decode("key", as: String.self)] = (
                try row.decode("node_uuid", as: UUID.self), try row.decode("concept", as: String.self),
                try row.decode("parent_key", as: String?.self), try row.decode("definition", as: String?.self),
                try row.decode("fact_ids", as: [String].self)
            )
        }
        let factIDs = Set(try await rows(w, "SELECT id FROM write_facts").map { try $0.decode(0, as: UUID.self) })
        let rejections = Set(try await rows(w, "SELECT node_id, fact_id FROM write_node_fact_rejections").map { "\(try $0.decode(0, as: UUID.self))/\(try $0.decode(1, as: UUID.self))" })

        struct NodeRow: Hashable { var id: UUID; var concept: String; var parent: UUID?; var definition: String? }
        let expectedNodes = Set(
            nodeKeys.values.map { value in
                NodeRow(id: value.0, concept: value.1, parent: value.2.flatMap { nodeKeys[$0] != nil ? GraphKeys.id(forKey: $0) : nil }, definition: value.3)
            })
        let actualNodes = Set(
            try await rows(g, "SELECT id, concept, parent_id, definition FROM nodes").map {
                NodeRow(id: try $0.decode(0, as: UUID.self), concept: try $0.decode(1, as: String.self), parent: try $0.decode(2, as: UUID?.self), definition: try $0.decode(3, as: String?.self))
            })
        #expect(actualNodes.symmetricDifference(expectedNodes).isEmpty, "nodes differ: missing \(expectedNodes.subtracting(actualNodes).count), extra \(actualNodes.subtracting(expectedNodes).count)")
        let actualFacts = Set(try await rows(g, "SELECT id FROM facts").map { try $0.decode(0, as: UUID.self) })
        #expect(actualFacts.symmetricDifference(factIDs).isEmpty, "facts differ")

        var expectedNodeFacts: Set<String> = []
        for value in nodeKeys.values {
            for fact in value.4.compactMap(UUID.init(uuidString:)) where factIDs.contains(fact) && !rejections.contains("\(value.0)/\(fact)") {
                expectedNodeFacts.insert("\(value.0)/\(fact)")
            }
        }
        let actualNodeFacts = Set(try await rows(g, "SELECT node_id, fact_id FROM node_facts").map { "\(try $0.decode(0, as: UUID.self))/\(try $0.decode(1, as: UUID.self))" })
        #expect(
            actualNodeFacts.symmetricDifference(expectedNodeFacts).isEmpty,
            "node_facts differ: missing \(expectedNodeFacts.subtracting(actualNodeFacts).count), extra \(actualNodeFacts.subtracting(expectedNodeFacts).count)")

        var expectedEdges: Set<String> = [], expectedEdgeFacts: Set<String> = []
        for row in try await rows(w, "SELECT key, source_node_key, target_node_key, relationship_type, weight, fact_ids FROM write_edges") {
            let source = try row.decode(1, as: String.self), target = try row.decode(2, as: String.self)
            guard nodeKeys[source] != nil, nodeKeys[target] != nil else { continue }
            let id = GraphKeys.id(forKey: try row.decode(0, as: String.self))
            let ends = [GraphKeys.id(forKey: source), GraphKeys.id(forKey: target)]
            let type = try row.decode(3, as: String.self)
            let ordered = GraphKeys.undirectedEdgeTypes.contains(type) ? ends.sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() } : ends
            expectedEdges.insert("\(id)/\(ordered[0])/\(ordered[1])/\(type)/\(try row.decode(4, as: Double.self))")
            for fact in try row.decode(5, as: [String].self).compactMap(UUID.init(uuidString:)) where factIDs.contains(fact) { expectedEdgeFacts.insert("\(id)/\(fact)") }
        }
        let actualEdges = Set(
            try await rows(g, "SELECT id, source_node_id, target_node_id, relationship_type, weight FROM edges").map {
                "\(try $0.decode(0, as: UUID.self))/\(try $0.decode(1, as: UUID.self))/\(try $0.decode(2, as: UUID.self))/\(try $0.decode(3, as: String.self))/\(try $0.decode(4, as: Double.self))"
            })
        #expect(actualEdges.symmetricDifference(expectedEdges).isEmpty, "edges differ: missing \(expectedEdges.subtracting(actualEdges).count), extra \(actualEdges.subtracting(expectedEdges).count)")
        let actualEdgeFacts = Set(try await rows(g, "SELECT edge_id, fact_id FROM edge_facts").map { "\(try $0.decode(0, as: UUID.self))/\(try $0.decode(1, as: UUID.self))" })
        #expect(actualEdgeFacts.symmetricDifference(expectedEdgeFacts).isEmpty, "edge_facts differ")

        var expectedDimensions: Set<String> = []
        for row in try await rows(w, "SELECT key, node_key, content FROM write_dimensions") where nodeKeys[try row.decode(1, as: String.self)] != nil {
            expectedDimensions.insert("\(GraphKeys.id(forKey: try row.decode(0, as: String.self)))/\(GraphKeys.id(forKey: try row.decode(1, as: String.self)))/\(try row.decode(2, as: String.self))")
        }
        let actualDimensions = Set(
            try await rows(g, "SELECT id, node_id, content FROM dimensions").map {
                "\(try $0.decode(0, as: UUID.self))/\(try $0.decode(1, as: UUID.self))/\(try $0.decode(2, as: String.self))"
            })
        #expect(actualDimensions.symmetricDifference(expectedDimensions).isEmpty, "dimensions differ")

        let usageRow: PostgresQuery = "SELECT id::text || '/' || model_id || '/' || prompt_tokens || '/' || coalesce(conversation_id, '-') FROM "
        let expectedUsage = Set(try await rows(w, usageRow + "write_llm_usage").map { try $0.decode(0, as: String.self) })
        let actualUsage = Set(try await rows(g, usageRow + "llm_usage").map { try $0.decode(0, as: String.self) })
        #expect(
            actualUsage.symmetricDifference(expectedUsage).isEmpty, "llm_usage differs: missing \(expectedUsage.subtracting(actualUsage).count), extra \(actualUsage.subtracting(expectedUsage).count)")

        // Denormalised counters agree with the rows.
        let wrongCounts = try await rows(
            g,
            """
            SELECT count(*) FROM nodes n WHERE
                n.fact_count <> (SELECT count(*) FROM node_facts nf WHERE nf.node_id = n.id)
             OR n.edge_count <> (SELECT count(*) FROM edges e WHERE e.source_node_id = n.id OR e.target_node_id = n.id)
             OR n.child_count <> (SELECT count(*) FROM nodes c WHERE c.parent_id = n.id)
             OR n.dimension_count <> (SELECT count(*) FROM dimensions d WHERE d.node_id = n.id)
            """
        ).first?.decode(0, as: Int.self)
        #expect(wrongCounts == 0, "denormalised counters differ on \(wrongCounts ?? -1) nodes")
        #expect(expectedNodes.count > 5 && expectedEdges.count > 5 && !expectedUsage.isEmpty, "the random run should leave a non-trivial graph")
    }
}
