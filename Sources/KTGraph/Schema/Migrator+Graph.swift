public import KTDB
public import Logging

extension Migrator {
    /// Creates (if needed) and migrates one graph's schema in its graph-db and its write-db.
    @discardableResult
    public static func migrateGraph(schema: SchemaName, graphDB: PostgresConnection, writeDB: PostgresConnection, logger: Logger) async throws -> Report {
        try await createSchemaIfNotExists(schema, on: graphDB, logger: logger)
        try await createSchemaIfNotExists(schema, on: writeDB, logger: logger)
        var report = try await migrate([.graphData], schema: schema, on: graphDB, logger: logger)
        report.applied += try await migrate([.writeData], schema: schema, on: writeDB, logger: logger).applied
        return report
    }
}
