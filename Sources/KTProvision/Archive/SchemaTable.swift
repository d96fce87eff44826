import KTDB
import Logging

/// A table of a graph's schema as the catalog describes it: its columns (generated columns
/// left out) and its primary key. ``list(_:on:logger:)`` orders tables so that they load: a
/// table comes after the tables its foreign keys point at.
struct SchemaTable: Sendable {
    var name: TableName
    var columns: [String]
    /// The primary key's columns (empty for a table without one).
    var primaryKey: [String]

    /// Tables of the SDK's machinery that are not graph data: never copied, exported or compared.
    static let machinery: Set<String> = ["kt_schema_migrations", "kt_move_changes"]

    static func list(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> [SchemaTable] {
        var tables: [String: (columns: [String], key: [String])] = [:]
        for row in try await connection.query(
            """
            SELECT c.relname::text, array_agg(a.attname::text ORDER BY a.attnum),
                   coalesce(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
                            FILTER (WHERE a.attnum = ANY (i.indkey::int2[])), '{}')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = \(schema.rawValue) AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY (\(Array(machinery)))
            GROUP BY c.relname
            """, logger: logger
        ).rows {
            tables[try row.decode(0, as: String.self)] = (try row.decode(1, as: [String].self), try row.decode(2, as: [String].self))
        }
        var references: [String: Set<String>] = [:]
        for row in try await connection.query(
            """
            SELECT c.relname::text, f.relname::text FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype = 'f' AND n.nspname = \(schema.rawValue) AND k.conrelid <> k.confrelid
            """, logger: logger
        ).rows {
            references[try row.decode(0, as: String.self), default: []].insert(try row.decode(1, as: String.self))
        }
        // Depth-first: referenced tables first; names sorted for a stable order.
        var ordered: [String] = [], visiting: Set<String> = [], done: Set<String> = []
        func visit(_ name: String) {
            guard !done.contains(name), !visiting.contains(name) else { return }
            visiting.insert(name)
            for target in (references[name] ?? []).sorted() where tables[target] != nil { visit(target) }
            visiting.remove(name)
            done.insert(name)
            ordered.append(name)
        }
        for name in tables.keys.sorted() { visit(name) }
        return try ordered.map { name in
            let table = tables[name]!
            for column in table.columns { try Self.validateColumn(column) }
            return SchemaTable(name: try TableName(validating: name, in: schema), columns: table.columns, primaryKey: table.key)
        }
    }

    /// A column name read from the catalog must be a plain lowercase identifier: it is written
    /// into SQL quoted, never from user input.
    static func validateColumn(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 63,
            name.utf8.allSatisfy({ ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") })
        else { throw KTProvisionError(code: .invalidState, message: "a table of the graph's schema has a column name the SDK does not write") }
    }

    /// `"a", "b"`: the columns quoted, for SQL.
    static func columnList(_ columns: [String], prefix: String = "") -> String {
        columns.map { "\(prefix)\"\($0)\"" }.joined(separator: ", ")
    }

    /// The sequences owned by a column of `schema`'s tables (a `bigserial` key), with the
    /// owning table and column.
    static func ownedSequences(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws -> [(sequence: String, table: String, column: String)] {
        try await connection.query(
            """
            SELECT s.relname::text, t.relname::text, a.attname::text
            FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
            JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
            JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
            WHERE s.relkind = 'S' AND n.nspname = \(schema.rawValue)
            ORDER BY 1
            """, logger: logger
        ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: String.self), try $0.decode(2, as: String.self)) }
    }

    /// Moves every sequence owned by a column of `schema` past the largest value its column
    /// holds, so that rows loaded with their ids (COPY) do not collide with the next insert.
    static func advanceSequences(_ schema: SchemaName, on connection: PostgresConnection, logger: Logger) async throws {
        for owned in try await ownedSequences(schema, on: connection, logger: logger) {
            try validateColumn(owned.column)
            let table = try TableName(validating: owned.table, in: schema), sequence = try TableName(validating: owned.sequence, in: schema)
            try await connection.query(
                """
                SELECT setval(\(sequence.sql)::regclass, greatest((SELECT max("\(unsafeRaw: owned.column)") FROM \(unsafeRaw: table.sql)), 1),
                              (SELECT max("\(unsafeRaw: owned.column)") IS NOT NULL FROM \(unsafeRaw: table.sql)))
                """, logger: logger)
        }
    }
}
