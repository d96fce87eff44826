import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import Testing

@Suite("Migrations (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct MigrationTests {
    let logger = TestEnvironment.logger

    func tables(in schema: String, _ c: PostgresConnection) async throws -> Set<String> {
        Set(try await c.query("SELECT tablename FROM pg_tables WHERE schemaname = \(schema)", logger: logger).rows.map { try $0.decode(0, as: String.self) })
    }

    func withConnections<T: Sendable>(_ graph: DatabaseURL, _ write: DatabaseURL, _ body: (PostgresConnection, PostgresConnection) async throws -> T) async throws -> T {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(graph), logger: logger) { g in
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(write), logger: logger) { w in
                try await body(g, w)
            }
        }
    }

    @Test("system migration creates the control plane and default graph data, seeds the default graph, and is idempotent")
    func system() async throws {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemGraphURL) { graphURL in
            try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { writeURL in
                try await withConnections(graphURL, writeURL) { g, w in
                    let first = try await Migrator.migrateSystem(graphDB: g, writeDB: w, logger: logger)
                    #expect(
                        first.applied.map(\.set) == Array(repeating: "control-plane", count: MigrationSet.controlPlane.migrations.count)
                            + Array(repeating: "graph-db", count: MigrationSet.graphData.migrations.count)
                            + Array(repeating: "write-db", count: MigrationSet.writeData.migrations.count))
                    let graphTables = try await tables(in: "public", g)
                    #expect(
                        graphTables.isSuperset(of: [
                            "user", "api_tokens", "graphs", "database_connections", "graph_members", "nodes", "edges", "facts", "node_facts", "node_versions", "convergence_reports",
                            "kt_schema_migrations",
                        ]))
                    let writeTables = try await tables(in: "public", w)
                    #expect(writeTables.isSuperset(of: ["write_nodes", "write_edges", "write_facts", "write_seeds", "sync_watermarks", "sync_failures"]))
                    #expect(writeTables.isDisjoint(with: ["graphs", "nodes"]))
                    let defaultGraph = try #require(try await g.query("SELECT slug, schema_name, is_default, status FROM graphs", logger: logger).first)
                    #expect(try defaultGraph.decode("slug", as: String.self) == "default")
                    #expect(try defaultGraph.decode("schema_name", as: String.self) == "public")
                    #expect(try defaultGraph.decode("is_default", as: Bool.self))
                    #expect(try defaultGraph.decode("status", as: String.self) == "active")
                    let trgm = try await g.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_facts_content_trgm'", logger: logger)
                    #expect(try trgm.first?.decode(0, as: Int.self) == 1)

                    let again = try await Migrator.migrateSystem(graphDB: g, writeDB: w, logger: logger)
                    #expect(again.applied.isEmpty)
                }
            }
        }
    }

    @Test("a graph schema on the external databases is created and migrated there, with nothing in their public schema")
    func externalGraphSchema() async throws {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.externalGraphURL) { graphURL in
            try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.externalWriteURL) { writeURL in
                try await withConnections(graphURL, writeURL) { g, w in
                    let schema = try SchemaName("graph_news")
                    let report = try await Migrator.migrateGraph(schema: schema, graphDB: g, writeDB: w, logger: logger)
                    #expect(report.applied.count == MigrationSet.graphData.migrations.count + MigrationSet.writeData.migrations.count)
                    #expect(try await tables(in: "graph_news", g).isSuperset(of: ["nodes", "facts", "edges", "dimensions", "kt_schema_migrations"]))
                    #expect(try await tables(in: "graph_news", g).isDisjoint(with: ["graphs", "user", "database_connections"]))
                    #expect(try await tables(in: "graph_news", w).isSuperset(of: ["write_nodes", "write_facts", "sync_watermarks"]))
                    // The catalog names exactly the tables the migrations create (and the version table).
                    #expect(try await tables(in: "graph_news", g) == Set(GraphTable.all.map(\.name) + ["kt_schema_migrations"]))
                    #expect(try await tables(in: "graph_news", w) == Set(WriteTable.all.map(\.name) + ["kt_schema_migrations"]))
                    #expect(try await tables(in: "public", g).isEmpty)
                    #expect(try await tables(in: "public", w).isEmpty)
                    // Trigram indexes land in the graph's schema, not public.
                    let index = try await g.query("SELECT schemaname FROM pg_indexes WHERE indexname = 'ix_facts_content_trgm'", logger: logger)
                    #expect(try index.rows.map { try $0.decode(0, as: String.self) } == ["graph_news"])
                    #expect(try await Migrator.migrateGraph(schema: schema, graphDB: g, writeDB: w, logger: logger).applied.isEmpty)
                }
            }
        }
    }

    @Test("two processes migrating the same schema at once: each migration applied exactly once")
    func concurrent() async throws {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { url in
            let schema = try SchemaName("graph_race")
            let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
                            try await Migrator.createSchemaIfNotExists(schema, on: c, logger: logger)
                            return try await Migrator.migrate([.graphData, .writeData], schema: schema, on: c, logger: logger)
                        }
                    }
                }
                return try await group.reduce(into: [Migrator.Report]()) { $0.append($1) }
            }
            #expect(reports.flatMap(\.applied).count == MigrationSet.graphData.migrations.count + MigrationSet.writeData.migrations.count)
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
                let count = try await c.query("SELECT count(*) FROM graph_race.kt_schema_migrations", logger: logger).first?.decode(0, as: Int.self)
                #expect(count == MigrationSet.graphData.migrations.count + MigrationSet.writeData.migrations.count)
            }
        }
    }

    @Test("a failing migration rolls back alone; earlier ones stay applied; the error names it")
    func failingMigration() async throws {
        let set = MigrationSet(
            name: "test-set",
            migrations: [
                Migration(version: 1, name: "good", sql: "CREATE TABLE good_table (id int)"),
                Migration(version: 2, name: "bad", sql: "CREATE TABLE half_table (id int); SELECT * FROM missing_table"),
            ])
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { url in
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
                let schema = try SchemaName("graph_fail")
                try await Migrator.createSchemaIfNotExists(schema, on: c, logger: logger)
                do {
                    try await Migrator.migrate([set], schema: schema, on: c, logger: logger)
                    Issue.record("expected a failure")
                } catch let error as KTDBError {
                    #expect(error.code == .migrationFailed)
                    #expect(error.message.contains("test-set/2"))
                    #expect(error.sqlState == "42P01")
                }
                #expect(try await tables(in: "graph_fail", c) == ["good_table", "kt_schema_migrations"])
                #expect(try await Migrator.appliedVersions(of: set, schema: schema, on: c, logger: logger) == [1])
            }
        }
    }

    @Test("migrating a schema that does not exist is a clear error")
    func missingSchema() async throws {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(try TestEnvironment.systemWriteURL), logger: logger) { c in
            do {
                try await Migrator.migrate([.writeData], schema: try SchemaName("graph_absent_x"), on: c, logger: logger)
                Issue.record("expected an error")
            } catch let error as KTDBError {
                #expect(error.code == .migrationFailed)
            }
        }
    }
}
