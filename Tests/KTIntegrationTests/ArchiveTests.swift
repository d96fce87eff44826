import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Testing

/// Export and import of a graph (issue 18): one file, checked, loaded on any pair.
@Suite("Graph export and import (real servers)", .enabled(if: TestEnvironment.isEnabled))
struct ArchiveTests {
    let logger = TestEnvironment.logger

    /// Per table of `schema`: row count and an order-independent checksum of the rows' text.
    static func tableDigests(_ schema: String, on url: DatabaseURL, logger: Logger) async throws -> [String: String] {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
            try await c.execute(simple: "SET TimeZone = 'UTC'", logger: logger)
            let tables = try await c.query(
                """
                SELECT tablename::text FROM pg_tables WHERE schemaname = \(schema) AND tablename <> 'kt_schema_migrations' ORDER BY 1
                """, logger: logger
            ).rows.map { try $0.decode(0, as: String.self) }
            var digests: [String: String] = [:]
            for table in tables {
                let name = try TableName(validating: table, in: try SchemaName(schema))
                let row = try await c.query(
                    """
                    SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text FROM \(unsafeRaw: name.sql) t
                    """, logger: logger
                ).first!
                digests[table] = "\(try row.decode(0, as: Int.self)):\(try row.decode(1, as: String.self))"
            }
            return digests
        }
    }

    /// Every point of a collection, by id: vector and payload.
    static func points(_ collection: String, qdrantURL: String) async throws -> [String: QdrantScoredPoint] {
        let client = try makeQdrantClient(url: qdrantURL, timeout: .seconds(10), logger: TestEnvironment.logger)
        defer { client.close() }
        var all: [String: QdrantScoredPoint] = [:], offset: String?
        repeat {
            let page = try await client.scroll(collection, limit: 100, offset: offset, withPayload: true, withVectors: true)
            for point in page.points { all[point.id] = point }
            offset = page.nextOffset
        } while offset != nil
        return all
    }

    @Test(
        "a graph with data exported from the system pair and imported under another slug on the external pair: every table and collection equal, the sync's state follows; damaged, newer and taken-slug archives are refused and leave nothing"
    )
    func exportImport() async throws {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let source = TestEnvironment.uniqueName("arc"), copy = TestEnvironment.uniqueName("arccopy")
                try await system.provisioner.createGraph(slug: source, name: "Archive source", description: "to be copied")
                let worker = try await system.workerEngine(slug: source, logger: logger)
                let vector: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
                var nodes: [GraphNode] = []
                for index in 0..<40 { nodes.append(try await worker.createNode(concept: "Concept \(index) «é»", embedding: vector.map { $0 * Float(index + 1) })) }
                let facts = try await worker.createFacts((0..<300).map { (content: "fact \($0)\twith tab", factType: "claim") })
                for index in 0..<20 {
                    try await worker.createEdge(sourceID: nodes[index].id, targetID: nodes[index + 1].id, factIDs: [facts[index].id])
                }
                _ = try await worker.createFact(content: "embedded fact", embedding: vector)
                try await system.sessions(slug: source).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                // A change after the last sync: the import must still sync it (the watermarks follow).
                try await worker.createNode(concept: "Late node")
                // A deletion leaves a tombstone (a serial key): the copy must go on numbering after it.
                try await worker.deleteFact(id: facts[299].id)

                let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(source).ktgraph")
                defer { try? FileManager.default.removeItem(at: file) }
                let manifest = try await system.provisioner.exportGraph(slug: source, to: file)
                #expect(manifest.parts.first { $0.key == "write/write_nodes" }?.rows == 41)
                #expect(manifest.parts.first { $0.key == "qdrant/nodes" }?.rows == 41)
                #expect(manifest.schemaVersions["graph-db"]?.last == MigrationSet.graphData.latestVersion)

                let imported = try await system.provisioner.importGraph(from: file, slug: copy, databaseKey: "shared")
                #expect(imported.name == "Archive source" && imported.description == "to be copied" && imported.status == .active)
                let schema = "graph_" + source, copySchema = "graph_" + copy
                #expect(try await Self.tableDigests(schema, on: world.systemGraph, logger: logger) == Self.tableDigests(copySchema, on: world.externalGraph, logger: logger))
                var writeBefore = try await Self.tableDigests(schema, on: world.systemWrite, logger: logger)
                var writeAfter = try await Self.tableDigests(copySchema, on: world.externalWrite, logger: logger)
                // The sync's state names the slug: compared apart.
                for table in ["sync_watermarks", "sync_failures"] {
                    #expect(writeBefore.removeValue(forKey: table)?.prefix(while: { $0 != ":" }) == writeAfter.removeValue(forKey: table)?.prefix(while: { $0 != ":" }))
                }
                #expect(writeBefore == writeAfter)
                let qdrant = try #require(TestEnvironment.variables["KT_TEST_QDRANT_URL"]), external = try #require(TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"])
                for (from, to) in zip(QdrantCollections(graphSlug: source).all, QdrantCollections(graphSlug: copy).all) {
                    let before = try await Self.points(from, qdrantURL: qdrant), after = try await Self.points(to, qdrantURL: external)
                    #expect(Set(before.keys) == Set(after.keys), "\(from) → \(to)")
                    for (id, point) in before {
                        // Qdrant normalises cosine vectors again on upsert: equal up to rounding.
                        #expect(point.payload == after[id]?.payload)
                        #expect(zip(point.vector ?? [], after[id]?.vector ?? []).allSatisfy { abs($0 - $1) < 1e-5 })
                    }
                }
                #expect(try await Self.points(QdrantCollections(graphSlug: copy).facts, qdrantURL: external).count == 300)
                try await system.workerEngine(slug: copy, logger: logger).deleteFact(id: facts[298].id)
                // The late node reaches the copy's graph-db through its own sync, from the copied watermarks.
                let report = try await system.sessions(slug: copy).syncEngine(settings: SyncSettings(), logger: logger).syncUntilIdle()
                #expect(report.applied["write_nodes"] == 1)

                // Refusals: nothing is created.
                let taken = await #expect(throws: KTProvisionError.self) { try await system.provisioner.importGraph(from: file, slug: source) }
                #expect(taken?.code == .conflict)
                var bytes = try Data(contentsOf: file)
                let damaged = file.deletingLastPathComponent().appendingPathComponent("\(source)-damaged.ktgraph")
                defer { try? FileManager.default.removeItem(at: damaged) }
                bytes[bytes.count / 2] ^= 0x01
                try bytes.write(to: damaged)
                let broken = await #expect(throws: KTProvisionError.self) { try await system.provisioner.importGraph(from: damaged, slug: "arc_damaged") }
                #expect(broken?.code == .invalidArchive)
                // A manifest naming a migration this build does not have (its record rewritten, bytes kept).
                let original = try Data(contentsOf: file)
                let marker = Data("\nM ".utf8)
                let manifestStart = try #require(original.range(of: marker, options: .backwards))
                let afterHeader = try #require(original[manifestStart.upperBound...].firstIndex(of: UInt8(ascii: "\n")))
                let jsonEnd = try #require(original[(afterHeader + 1)...].firstIndex(of: UInt8(ascii: "\n")))
                let json = String(decoding: original[(afterHeader + 1)..<jsonEnd], as: UTF8.self)
                let head = "\"graph-db\":[" + MigrationSet.graphData.migrations.map { String($0.version) }.joined(separator: ",") + "]"
                #expect(json.contains(head))
                let rewritten = json.replacingOccurrences(of: head, with: head.dropLast() + ",9999]")
                let newer = file.deletingLastPathComponent().appendingPathComponent("\(source)-newer.ktgraph")
                defer { try? FileManager.default.removeItem(at: newer) }
                try (original[..<manifestStart.lowerBound] + Data("\nM \(rewritten.utf8.count)\n\(rewritten)\nE\n".utf8)).write(to: newer)
                let tooNew = await #expect(throws: KTProvisionError.self) { try await system.provisioner.importGraph(from: newer, slug: "arc_newer") }
                #expect(tooNew?.code == .invalidArchive)
                #expect(tooNew?.message.contains("9999") == true)
                let repository = GraphRepository(world.controlPlane, logger: logger)
                for slug in ["arc_damaged", "arc_newer"] {
                    #expect(try await repository.graph(slug: slug) == nil)
                    #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.systemGraph) == false)
                }
            }
        }
    }

    @Test("an import whose data the server rejects (a well-formed archive with a broken part), or whose pair cannot be reached, leaves no graph, schema or collection behind")
    func failedImportCleansUp() async throws {
        try await TestWorld.with(logger: logger) { world in
            try await withGraphSystem(settings: world.settings, logger: logger) { system in
                let junk = Array("not binary COPY data".utf8)
                let directory = FileManager.default.temporaryDirectory
                let partFile = directory.appendingPathComponent(TestEnvironment.uniqueName("part"))
                try Data(junk).write(to: partFile)
                defer { try? FileManager.default.removeItem(at: partFile) }
                let hash = try await TestEnvironment.runProcess(URL(fileURLWithPath: "/usr/bin/sha256sum"), [partFile.path])
                let sha = String(hash.output.prefix(64))
                let manifest = """
                    {"createdAt":"2026-11-26T00:00:00Z","format":1,"graph":{"byokEnabled":false,"contributeToPublic":true,"graphType":"v1","name":"Crafted","slug":"crafted","usePublicCache":true},\
                    "parts":[{"bytes":\(junk.count),"columns":["key"],"name":"write_nodes","rows":1,"sha256":"\(sha)","store":"write"}],"schemaVersions":{}}
                    """
                var archive = Data("KTGRAPH 1\nP write/write_nodes \(junk.count)\n".utf8) + Data(junk)
                archive += Data("M \(manifest.utf8.count)\n\(manifest)\nE\n".utf8)
                let file = directory.appendingPathComponent(TestEnvironment.uniqueName("crafted") + ".ktgraph")
                try archive.write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                let repository = GraphRepository(world.controlPlane, logger: logger)
                for (slug, key) in [("arc_rejected", "shared"), ("arc_unreachable", "broken")] {
                    await #expect(throws: (any Error).self) { try await system.provisioner.importGraph(from: file, slug: slug, databaseKey: key) }
                    #expect(try await repository.graph(slug: slug) == nil, "\(slug)")
                    #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalGraph) == false)
                    #expect(try await TestEnvironment.schemaExists("graph_" + slug, on: world.externalWrite) == false)
                }
                let external = try #require(TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"])
                let client = try makeQdrantClient(url: external, timeout: .seconds(10), logger: logger)
                defer { client.close() }
                for name in QdrantCollections(graphSlug: "arc_rejected").all { #expect(try await client.collectionExists(name) == false) }
            }
        }
    }
}
