public import KTDB
import KTGraph
public import Logging

extension Migrator {
    /// Migrates the system databases: the control plane and the default graph's data in
    /// `public` of graph-db, the default graph's write tables in `public` of write-db.
    @discardableResult
    public static func migrateSystem(graphDB: PostgresConnection, writeDB: PostgresConnection, logger: Logger) async throws -> Report {
        var report = try await migrate([.controlPlane, .graphData], schema: .public, on: graphDB, logger: logger)
        report.applied += try await migrate([.writeData], schema: .public, on: writeDB, logger: logger).applied
        return report
    }
}
