/// A SQL statement with its values as bound parameters.
///
/// Build it with string interpolation: every interpolated value becomes a `$n` parameter and
/// is never spliced into the SQL text.
///
/// ```swift
/// let query: PostgresQuery = "SELECT name FROM graphs WHERE slug = \(slug) AND status = \(status)"
/// ```
///
/// Identifiers go in only through ``StringInterpolation/appendInterpolation(identifier:)`` with
/// a validated ``SchemaName``.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The SQL text with `$1…$n` placeholders.
    public var sql: String
    /// The bound values, in placeholder order.
    public var binds: PostgresBindings

    /// A query from SQL text and explicit bindings.
    public init(unsafeSQL sql: String, binds: PostgresBindings = PostgresBindings()) {
        self.sql = sql
        self.binds = binds
    }

    /// A query without parameters.
    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    /// A query built by interpolation.
    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// The SQL text only (bound values are not shown).
    public var description: String { sql }

    /// Appends another query: its SQL after this one's, its placeholders renumbered after this
    /// query's bindings. (A `$n` placeholder is a `$` plus digits not preceded by a letter, digit,
    /// `_` or `$`; fragments must not hold such text inside literals.)
    public mutating func append(_ other: PostgresQuery) {
        sql += Self.shiftingPlaceholders(of: other.sql, by: binds.count)
        binds.append(contentsOf: other.binds)
    }

    /// `lhs` followed by `rhs` (see ``append(_:)``).
    public static func + (lhs: PostgresQuery, rhs: PostgresQuery) -> PostgresQuery {
        var result = lhs
        result.append(rhs)
        return result
    }

    static func shiftingPlaceholders(of sql: String, by offset: Int) -> String {
        guard offset > 0, sql.contains("$") else { return sql }
        var result = ""
        var characters = Array(sql)[...]
        var previous: Character = " "
        while let character = characters.popFirst() {
            if character == "$", !(previous.isLetter || previous.isNumber || previous == "_" || previous == "$"),
                let first = characters.first, first.isASCII, first.isNumber
            {
                var digits = ""
                while let next = characters.first, next.isASCII, next.isNumber { digits.append(next); characters.removeFirst() }
                result += "$\(Int(digits)! + offset)"
                previous = "0"
                continue
            }
            result.append(character)
            previous = character
        }
        return result
    }

    /// Builds SQL text and bindings together.
    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        /// The SQL so far.
        public var sql: String
        /// The bindings so far.
        public var binds: PostgresBindings

        /// Creates an empty interpolation.
        public init(literalCapacity: Int, interpolationCount: Int) {
            self.sql = ""
            self.sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            self.binds = PostgresBindings()
        }

        /// Appends SQL text.
        public mutating func appendLiteral(_ literal: String) { sql += literal }

        /// Appends a value as the next `$n` parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        /// Appends an optional value as the next `$n` parameter (`NULL` when nil).
        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            binds.append(value)
            sql += "$\(binds.count)"
        }

        /// Appends SQL text written by the SDK itself (a column list): never user input.
        public mutating func appendInterpolation(unsafeRaw sql: String) {
            self.sql += sql
        }

        /// Appends a validated schema name as a quoted identifier.
        public mutating func appendInterpolation(identifier schema: SchemaName) {
            sql += schema.quoted
        }

        /// Appends a table name, qualified with its schema unless the schema is `public`.
        public mutating func appendInterpolation(_ table: TableName) {
            sql += table.sql
        }
    }
}

/// The bound values of a ``PostgresQuery``, already in PostgreSQL's text format.
public struct PostgresBindings: Sendable, Hashable {
    /// Text values (`nil` is SQL `NULL`).
    public private(set) var values: [String?]
    /// The type OID of each value (0 lets the server infer it).
    public private(set) var typeOIDs: [UInt32]

    /// Empty bindings.
    public init() {
        values = []
        typeOIDs = []
    }

    /// The number of values.
    public var count: Int { values.count }

    /// Appends a value.
    public mutating func append(_ value: some PostgresEncodable) {
        values.append(value.postgresText)
        typeOIDs.append(type(of: value).postgresTypeOID)
    }

    /// Appends an optional value.
    public mutating func append<Value: PostgresEncodable>(_ value: Value?) {
        values.append(value?.postgresText)
        typeOIDs.append(Value.postgresTypeOID)
    }

    /// Appends all of `other`'s values.
    public mutating func append(contentsOf other: PostgresBindings) {
        values.append(contentsOf: other.values)
        typeOIDs.append(contentsOf: other.typeOIDs)
    }
}
