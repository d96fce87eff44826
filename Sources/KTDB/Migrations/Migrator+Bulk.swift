public import Logging

extension Migrator {
    /// The versions applied to each of `schemas`, per migration set, read in a few statements
    /// whatever the number of schemas (one to find the version tables, then one per 200
    /// schemas). A schema without a version table (or missing) has no entry.
    public static func appliedVersions(schemas: [SchemaName], on connection: PostgresConnection, logger: Logger) async throws -> [SchemaName: [String: Set<Int>]] {
        guard !schemas.isEmpty else { return [:] }
        let byName = Dictionary(schemas.map { ($0.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        let tables = try await connection.query(
            """
            SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = 'kt_schema_migrations' AND c.relkind = 'r' AND n.nspname = ANY(\(Array(byName.keys)))
            """, logger: logger)
        let withTable = try tables.rows.compactMap { row throws(KTDBError) in byName[try row.decode(0, as: String.self)] }
        var applied: [SchemaName: [String: Set<Int>]] = [:]
        for schema in withTable { applied[schema] = [:] }
        var start = 0
        while start < withTable.count {
            let chunk = withTable[start..<min(withTable.count, start + 200)]
            start += 200
            var query: PostgresQuery = ""
            for (index, schema) in chunk.enumerated() {
                if index > 0 { query.append(" UNION ALL ") }
                query.append("SELECT \(schema.rawValue)::text, migration_set::text, version FROM \(TableName("kt_schema_migrations", in: schema))")
            }
            for row in try await connection.query(query, logger: logger).rows {
                guard let schema = byName[try row.decode(0, as: String.self)] else { continue }
                applied[schema, default: [:]][try row.decode(1, as: String.self), default: []].insert(try row.decode(2, as: Int.self))
            }
        }
        return applied
    }

    /// The migrations of `sets` not in `applied` (as returned by ``appliedVersions(schemas:on:logger:)``).
    public static func pendingCount(of sets: [MigrationSet], applied: [String: Set<Int>]?) -> Int {
        sets.reduce(0) { total, set in total + set.migrations.filter { !(applied?[set.name]?.contains($0.version) ?? false) }.count }
    }
}
