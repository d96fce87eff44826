import ArgumentParser
import Foundation
import KTConfig
import KTDB
import Logging

/// `kt demo`: a short tour of the SDK on the configured databases: migrate, bind a session to a
/// graph schema, write in a transaction with per-item savepoints, read back.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Write and read a few nodes through a schema-bound session.")

    @Option(help: "Schema of the demo graph.") var schema = "graph_demo"
    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            let logger = environment.logger
            let schemaName = try SchemaName(schema)
            print("settings: \(environment.settings.databaseURL) / \(environment.settings.writeDatabaseURL)")

            let report = try await environment.withSystemConnections { graph, write in
                var report = try await Migrator.migrateSystem(graphDB: graph, writeDB: write, logger: logger)
                report.applied += try await Migrator.migrateGraph(schema: schemaName, graphDB: graph, writeDB: write, logger: logger).applied
                return report
            }
            print("migrations applied: \(report.applied.count)")

            var poolSettings = environment.settings.writePool
            poolSettings.size = 2
            poolSettings.maxOverflow = 2
            try await PostgresConnectionPool.withPool(
                configuration: .init(connection: environment.writeConfiguration(application: "kt-write-demo"), pool: poolSettings, label: "write:\(schema)"),
                backgroundLogger: logger
            ) { pool in
                let session = DatabaseSession(pool: pool, schema: schemaName)

                let concepts = ["Photosynthesis", "Chlorophyll", "Sunlight"]
                let written = try await session.withTransaction(logger: logger) { tx in
                    var written = 0
                    for concept in concepts {
                        let key = concept.lowercased()
                        try await tx.withSavepoint { item in
                            try await item.query("""
                                INSERT INTO write_nodes (key, node_uuid, concept, definition)
                                VALUES (\(key), \(UUID()), \(concept), \("A demo node written by kt demo"))
                                ON CONFLICT (key) DO UPDATE SET updated_at = now()
                                """)
                        }
                        written += 1
                    }
                    return written
                }
                print("upserted \(written) nodes into \(schema).write_nodes")

                let rows = try await session.query("SELECT key, concept, updated_at FROM write_nodes ORDER BY key", logger: logger).rows
                for row in rows {
                    print("  \(try row.decode("key", as: String.self))\t\(try row.decode("concept", as: String.self))\t\(try row.decode("updated_at", as: Date.self))")
                }
                let stats = pool.statistics
                print("pool: \(stats.idle) idle, \(stats.inUse) in use")
            }
        }
    }
}
