public import Foundation
import KTConfig
import KTDB
import KTGraph
import KTQdrant
import Logging

/// Progress of an export or an import: one event per part.
public struct ArchiveProgress: Sendable {
    /// The part done (`graph/nodes`, `write/write_facts`, `qdrant/facts`, …).
    public var part: String
    /// Its rows or points.
    public var rows: Int
    /// Parts done, and how many there are (for an export, known once the tables are listed).
    public var completed: Int, total: Int
}

extension GraphProvisioner {
    /// Writes graph `slug` to `url` as one archive: its settings, the rows of both schemas
    /// (PostgreSQL's binary COPY format, each schema read in one snapshot), the points of its
    /// three collections (vectors and payloads), the migrations applied, and a SHA-256 per part.
    ///
    /// Qdrant has no snapshot shared with PostgreSQL: points written during the export may or
    /// may not be in it.
    ///
    /// - Returns: The archive's manifest.
    /// - Throws: ``KTProvisionError/Code/notFound``; ``KTProvisionError/Code/invalidState``
    ///   unless the graph is active; database, Qdrant and file errors (the file is removed).
    @discardableResult
    public func exportGraph(slug: String, to url: URL, progress: @escaping @Sendable (ArchiveProgress) -> Void = { _ in }) async throws -> GraphArchiveManifest {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard let graph = try await repository.graph(slug: slug) else { throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'") }
        guard graph.status == GraphStatus.active else {
            throw KTProvisionError(code: .invalidState, message: "graph '\(slug)' is \(graph.status.rawValue); only an active graph can be exported")
        }
        let targets = try await targets(for: graph)
        let writer = try GraphArchiveFile.Writer(creating: url)
        do {
            var parts: [GraphArchiveManifest.Part] = []
            var versions: [String: [Int]] = [:]
            try await withConnections(targets, slug: slug) { graphDB, writeDB in
                let stores = [("graph", graphDB), ("write", writeDB)]
                var layouts: [(String, PostgresConnection, [SchemaTable])] = []
                for (store, connection) in stores {
                    try await connection.execute(simple: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                    layouts.append((store, connection, try await SchemaTable.list(targets.schema, on: connection, logger: logger)))
                    versions.merge(try await Self.appliedMigrations(targets.schema, on: connection, logger: logger)) { $1 }
                }
                let total = layouts.reduce(0) { $0 + $1.2.count } + 3
                for (store, connection, tables) in layouts {
                    for table in tables {
                        let key = "\(store)/\(table.name.name)"
                        let rows = try await connection.copyOut(table.name, columns: table.columns, logger: logger) { try writer.write(part: key, $0) }
                        let summary = writer.summary(of: key)
                        parts.append(.init(store: store, name: table.name.name, columns: table.columns, rows: rows, bytes: summary.bytes, sha256: summary.sha256))
                        progress(ArchiveProgress(part: key, rows: rows, completed: parts.count, total: total))
                    }
                    try await connection.execute(simple: "COMMIT", logger: logger)
                }
                let collections = QdrantCollections(graphSlug: slug)
                try await withQdrant(targets) { qdrant in
                    for (kind, collection) in zip(["facts", "nodes", "seeds"], collections.all) {
                        let key = "qdrant/\(kind)"
                        let points = try await Self.exportPoints(collection, qdrant) { try writer.write(part: key, $0) }
                        let summary = writer.summary(of: key)
                        parts.append(.init(store: "qdrant", name: kind, columns: nil, rows: points, bytes: summary.bytes, sha256: summary.sha256))
                        progress(ArchiveProgress(part: key, rows: points, completed: parts.count, total: total))
                    }
                }
            }
            let manifest = GraphArchiveManifest(
                format: GraphArchiveFile.currentFormat, createdAt: Date(),
                graph: .init(
                    slug: graph.slug, name: graph.name, description: graph.description, graphType: graph.graphType,
                    byokEnabled: graph.byokEnabled, contributeToPublic: graph.contributeToPublic, usePublicCache: graph.usePublicCache),
                schemaVersions: versions, parts: parts)
            try writer.finish(manifest)
            logger.debug("graph exported", metadata: ["kt.graph": "\(slug)", "kt.archive.parts": "\(parts.count)"])
            return manifest
        } catch {
            try? FileManager.default.removeItem(at: url)
            throw error
        }
    }

    /// Creates graph `slug` from an archive written by ``exportGraph(slug:to:progress:)``, on the
    /// pair `databaseKey` (`nil` or `default`: the system pair). Rows keep their ids; the
    /// collections take the new slug's names; the sync's state follows the rows.
    ///
    /// The whole file is read and checked before anything is created. If anything fails after
    /// the graph was created, the graph is deleted again (schemas, collections and row).
    ///
    /// - Throws: ``KTProvisionError/Code/invalidArchive`` for a damaged file, an unknown format,
    ///   or migrations newer than this build's; ``KTProvisionError/Code/conflict`` for a taken
    ///   slug; what ``createGraph(slug:name:description:databaseKey:createdBy:graphType:byokEnabled:contributeToPublic:usePublicCache:progress:)`` throws.
    @discardableResult
    public func importGraph(
        from url: URL, slug: String, name: String? = nil, databaseKey: String? = nil, createdBy: UUID? = nil,
        progress: @escaping @Sendable (ArchiveProgress) -> Void = { _ in }
    ) async throws -> Graph {
        let manifest = try GraphArchiveFile.verify(url)
        for set in [MigrationSet.graphData, .writeData] {
            let known = Set(set.migrations.map(\.version))
            if let newer = manifest.schemaVersions[set.name]?.first(where: { !known.contains($0) }) {
                throw KTProvisionError(
                    code: .invalidArchive, message: "the archive's \(set.name) schema has migration \(newer), newer than this build's \(set.latestVersion): import it with a newer build")
            }
        }
        let info = manifest.graph
        try await preflight(databaseKey: databaseKey, slug: slug)
        let graph: Graph
        do {
            graph = try await createGraph(
                slug: slug, name: name ?? info.name, description: info.description, databaseKey: databaseKey, createdBy: createdBy,
                graphType: info.graphType, byokEnabled: info.byokEnabled, contributeToPublic: info.contributeToPublic, usePublicCache: info.usePublicCache)
        } catch let error as KTProvisionError where error.code == .stepFailed {
            // Provisioning failed (the graph is in `error`): an import leaves nothing behind.
            try? await deleteGraph(slug: slug, hard: true)
            throw error
        }
        do {
            try await load(manifest, from: url, into: graph, progress: progress)
            logger.debug("graph imported", metadata: ["kt.graph": "\(graph.slug)", "kt.archive.from": "\(info.slug)"])
            return graph
        } catch {
            logger.debug("import failed; deleting the new graph", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(Self.describe(error))"])
            try? await deleteGraph(slug: graph.slug, hard: true)
            throw error
        }
    }

    /// Checks that the pair `databaseKey` and its Qdrant answer, before anything is created for
    /// an import (a graph whose creation failed there could not be removed again).
    private func preflight(databaseKey: String?, slug: String) async throws {
        let schema = try Self.validatedSlug(slug).schemaName
        let targets: GraphTargets
        do {
            targets = try GraphTargets.resolve(connectionKey: databaseKey, schema: schema, settings: settings)
        } catch {
            throw KTProvisionError(code: .unknownConnection, message: Self.describe(error))
        }
        do {
            try await withConnections(targets, slug: slug) { graphDB, writeDB in
                for connection in [graphDB, writeDB] { try await connection.query("SELECT 1", logger: logger) }
            }
            _ = try await withQdrant(targets) { try await $0.listCollections() }
        } catch {
            throw KTProvisionError(code: .stepFailed, message: "the pair '\(databaseKey ?? GraphDatabases.defaultKey)' cannot be reached: \(Self.describe(error)); nothing was created")
        }
    }

    /// Loads the archive's parts into a new, empty graph: each schema in one transaction, then
    /// the points.
    private func load(_ manifest: GraphArchiveManifest, from url: URL, into graph: Graph, progress: @escaping @Sendable (ArchiveProgress) -> Void) async throws {
        let targets = try await targets(for: graph)
        let reader = try GraphArchiveFile.Reader(url: url)
        let parts = Dictionary(manifest.parts.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        var completed = 0
        try await withConnections(targets, slug: graph.slug) { graphDB, writeDB in
            for connection in [graphDB, writeDB] { try await connection.execute(simple: "BEGIN", logger: logger) }
            var pending = try reader.next()
            let collections = QdrantCollections(graphSlug: graph.slug)
            while case .part(let key, _) = pending {
                guard let part = parts[key] else { throw GraphArchiveFile.Reader.damaged("part \(key) is not in the manifest") }
                // The records of this part, in order, ending at the next part's first record.
                func nextChunk() throws -> [UInt8]? {
                    guard case .part(key, let bytes) = pending else { return nil }
                    pending = try reader.next()
                    return bytes
                }
                switch part.store {
                case "graph", "write":
                    let connection = part.store == "graph" ? graphDB : writeDB
                    let table = try TableName(validating: part.name, in: targets.schema)
                    let rows = try await connection.copyIn(table, columns: part.columns, logger: logger) { writer in
                        while let chunk = try nextChunk() { try await writer.write(chunk) }
                    }
                    guard rows == part.rows else { throw GraphArchiveFile.Reader.damaged("part \(key) loaded \(rows) rows, not \(part.rows)") }
                case "qdrant":
                    guard let index = ["facts", "nodes", "seeds"].firstIndex(of: part.name) else { throw GraphArchiveFile.Reader.damaged("unknown collection \(part.name)") }
                    let collection = collections.all[index]
                    var lines = Data()
                    while let chunk = try nextChunk() { lines.append(contentsOf: chunk) }
                    let points = try lines.split(separator: UInt8(ascii: "\n")).map { line in
                        try JSONDecoder().decode(ArchivedPoint.self, from: Data(line)).point
                    }
                    try await withQdrant(targets) { try await $0.upsertChunked(collection, points: points, chunkSize: 256) }
                default:
                    throw GraphArchiveFile.Reader.damaged("unknown store \(part.store)")
                }
                completed += 1
                progress(ArchiveProgress(part: key, rows: part.rows, completed: completed, total: manifest.parts.count))
            }
            // The sync's state is recorded per slug: it follows the graph to its new one.
            if manifest.graph.slug != graph.slug {
                for table in [WriteTable.syncWatermarks, .syncFailures].map({ $0.qualified(in: targets.schema) }) {
                    try await writeDB.query("UPDATE \(table) SET graph_slug = \(graph.slug) WHERE graph_slug = \(manifest.graph.slug)", logger: logger)
                }
            }
            // Rows came with their ids: a serial key's next value must come after them.
            for connection in [graphDB, writeDB] { try await SchemaTable.advanceSequences(targets.schema, on: connection, logger: logger) }
            try await writeDB.execute(simple: "COMMIT", logger: logger)
            try await graphDB.execute(simple: "COMMIT", logger: logger)
        }
    }

    /// The migrations applied to `schema`, by set name.
    static func appliedMigrations(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> [String: [Int]] {
        let table = try TableName(validating: "kt_schema_migrations", in: schema)
        var versions: [String: [Int]] = [:]
        for row in try await connection.query("SELECT migration_set, version FROM \(unsafeRaw: table.sql) ORDER BY version", logger: logger).rows {
            versions[try row.decode(0, as: String.self), default: []].append(try row.decode(1, as: Int.self))
        }
        return versions
    }

    /// Writes a collection's points as JSON lines (`write` gets one page at a time); returns how many.
    static func exportPoints(_ collection: String, _ qdrant: QdrantClient, write: ([UInt8]) throws -> Void) async throws -> Int {
        var offset: String?, count = 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        repeat {
            let page = try await qdrant.scroll(collection, limit: 256, offset: offset, withPayload: true, withVectors: true)
            var bytes: [UInt8] = []
            for point in page.points {
                guard let id = UUID(uuidString: point.id), let vector = point.vector else {
                    throw KTProvisionError(code: .invalidState, message: "collection \(collection) holds a point without a UUID id or a vector")
                }
                bytes += try encoder.encode(ArchivedPoint(id: id, vector: vector, payload: point.payload ?? [:]))
                bytes.append(UInt8(ascii: "\n"))
            }
            try write(bytes)
            count += page.points.count
            offset = page.nextOffset
        } while offset != nil
        return count
    }
}

/// A point as an archive holds it.
struct ArchivedPoint: Codable {
    var id: UUID
    var vector: [Float]
    var payload: [String: JSONValue]

    var point: QdrantPoint { QdrantPoint(id: id, vector: vector, payload: payload) }
}
