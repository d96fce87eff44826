/// A validated PostgreSQL schema name, safe to quote into DDL and `search_path`.
///
/// Rules: `^[a-z0-9_]+$`, at most 63 bytes, and not `public`, `information_schema` or any
/// name starting with `pg_` (use ``public`` for the public schema explicitly).
public struct SchemaName: Sendable, Hashable, CustomStringConvertible {
    /// The unquoted name.
    public let rawValue: String

    /// The `public` schema (the control plane and the default graph live there).
    public static let `public` = SchemaName(unchecked: "public")

    private init(unchecked: String) { self.rawValue = unchecked }

    /// Validates a schema name of a graph.
    ///
    /// - Throws: ``KTDBError`` with code ``KTDBError/Code/invalidSchemaName`` explaining the rule broken.
    public init(_ name: String) throws(KTDBError) {
        func fail(_ why: String) -> KTDBError {
            KTDBError(code: .invalidSchemaName, message: "invalid schema name: \(why)")
        }
        guard !name.isEmpty else { throw fail("empty") }
        guard name.utf8.count <= 63 else { throw fail("longer than 63 bytes") }
        guard isLowercaseIdentifier(name) else {
            throw fail("only a-z, 0-9 and _ are allowed")
        }
        guard name != "public", name != "information_schema", !name.hasPrefix("pg_") else {
            throw fail("'\(name)' is reserved")
        }
        self.rawValue = name
    }

    /// The name as a quoted identifier, for example `"graph_news"`.
    public var quoted: String { "\"\(rawValue)\"" }

    /// Whether this is the `public` schema.
    public var isPublic: Bool { rawValue == "public" }

    /// The unquoted name.
    public var description: String { rawValue }
}

/// A table of the SDK's own schema in a ``SchemaName``, for SQL that must not depend on the
/// connection's `search_path`.
///
/// Interpolated into a ``PostgresQuery`` it renders as `"graph_x".nodes`, so a statement
/// reaches the graph's table on whatever pooled connection it runs (through PgBouncer in
/// transaction mode too) without a `search_path` setting first. In ``SchemaName/public`` it
/// renders unqualified, so `search_path` decides as for any unqualified name.
public struct TableName: Sendable, Hashable, CustomStringConvertible {
    /// The schema.
    public let schema: SchemaName
    /// The table's name as written by the SDK (a lowercase SQL identifier).
    public let name: String

    /// The SQL text: `"schema".name`, or `name` in `public`.
    public let sql: String

    /// A table of `schema`. `name` is SDK text, never user input: it must be a lowercase SQL
    /// identifier (letters, digits, underscores).
    public init(_ name: StaticString, in schema: SchemaName) {
        self.init(catalogued: name.description, in: schema)
    }

    /// A table of `schema` from a catalog of the SDK's own tables (names that are SDK text,
    /// checked like ``init(_:in:)``).
    package init(catalogued name: String, in schema: SchemaName) {
        precondition(!name.isEmpty && isLowercaseIdentifier(name), "a table name must be a lowercase SQL identifier")
        self.init(checked: name, in: schema)
    }

    /// A table of `schema` named at run time (for example read from the catalog).
    ///
    /// - Throws: ``KTDBError/Code/invalidArgument`` unless `name` is a lowercase SQL identifier
    ///   of at most 63 bytes.
    public init(validating name: String, in schema: SchemaName) throws(KTDBError) {
        guard !name.isEmpty, name.utf8.count <= 63, isLowercaseIdentifier(name), !(name.first?.isNumber ?? false) else {
            throw KTDBError(code: .invalidArgument, message: "invalid table name: only a-z, 0-9 and _ are allowed, at most 63 bytes")
        }
        self.init(checked: name, in: schema)
    }

    private init(checked name: String, in schema: SchemaName) {
        self.name = name
        self.schema = schema
        self.sql = schema.isPublic ? name : "\(schema.quoted).\(name)"
    }

    /// The SQL text.
    public var description: String { sql }
}

/// Whether `text` holds only `a-z`, `0-9` and `_`.
private func isLowercaseIdentifier(_ text: String) -> Bool {
    text.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
}
