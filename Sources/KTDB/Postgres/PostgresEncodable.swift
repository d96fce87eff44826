public import Foundation

/// A value that can be bound as a query parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The type OID sent with the parameter; 0 lets the server infer it from context.
    static var postgresTypeOID: UInt32 { get }
    /// The value in PostgreSQL's text input format.
    var postgresText: String { get }
}

extension String: PostgresEncodable {
    /// `text`.
    public static var postgresTypeOID: UInt32 { 25 }
    /// The string itself.
    public var postgresText: String { self }
}

extension Int: PostgresEncodable {
    /// `int8`.
    public static var postgresTypeOID: UInt32 { 20 }
    /// Decimal digits.
    public var postgresText: String { String(self) }
}

extension Int64: PostgresEncodable {
    /// `int8`.
    public static var postgresTypeOID: UInt32 { 20 }
    /// Decimal digits.
    public var postgresText: String { String(self) }
}

extension Int32: PostgresEncodable {
    /// `int4`.
    public static var postgresTypeOID: UInt32 { 23 }
    /// Decimal digits.
    public var postgresText: String { String(self) }
}

extension Double: PostgresEncodable {
    /// `float8`.
    public static var postgresTypeOID: UInt32 { 701 }
    /// A round-tripping decimal, or `NaN`/`Infinity`/`-Infinity`.
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
}

extension Bool: PostgresEncodable {
    /// `bool`.
    public static var postgresTypeOID: UInt32 { 16 }
    /// `t` or `f`.
    public var postgresText: String { self ? "t" : "f" }
}

extension UUID: PostgresEncodable {
    /// `uuid`.
    public static var postgresTypeOID: UInt32 { 2950 }
    /// The lower-case canonical form.
    public var postgresText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    text[at] = digit(byte >> 4)
                    text[at + 1] = digit(byte & 0x0F)
                    at += 2
                }
                return at
            }
        }
    }
}

extension Date: PostgresEncodable {
    /// Unknown (0): the server takes the column's type, `timestamp` or `timestamptz`.
    public static var postgresTypeOID: UInt32 { 0 }
    /// ISO 8601 in UTC with microseconds and an explicit `+00` offset; a `timestamp` column
    /// stores the UTC wall time, a `timestamptz` column the exact instant.
    public var postgresText: String { PostgresTimestamp.format(self) }
}

extension Array: PostgresEncodable where Element == String {
    /// `text[]`.
    public static var postgresTypeOID: UInt32 { 1009 }
    /// An array literal with every element quoted and escaped.
    public var postgresText: String { PostgresTextArray.format(self) }
}

/// A one-dimensional array whose elements may be NULL, bound in PostgreSQL's text format with
/// no declared type: cast it in SQL to the array type the statement needs (`\(array)::uuid[]`,
/// `::timestamptz[]`, `::int[]`); without a cast the server cannot tell its type.
///
/// Several arrays of the same length passed to `unnest(a, b, c)` carry a batch of rows in one
/// statement, column by column: cheaper for the server to read than a JSON document of the
/// same rows (no document to parse, each value read once by its type's input function).
public struct PostgresArray: PostgresEncodable, Hashable {
    /// The array literal, formatted once when the array is created (a batch can be prepared
    /// ahead of the statement that binds it): every element quoted and escaped, `NULL` unquoted.
    public let postgresText: String

    /// Wraps elements already in PostgreSQL's text form; `nil` is SQL NULL.
    public init(text elements: [String?]) { postgresText = PostgresTextArray.format(elements) }

    /// The elements' text forms (``PostgresEncodable/postgresText``); `nil` is SQL NULL.
    public init<Value: PostgresEncodable>(_ values: [Value?]) { postgresText = PostgresTextArray.format(values.lazy.map { $0?.postgresText }) }

    /// The elements' text forms (``PostgresEncodable/postgresText``).
    public init<Value: PostgresEncodable>(_ values: [Value]) { postgresText = PostgresTextArray.format(values.lazy.map { Optional($0.postgresText) }) }

    /// Unknown (0): the server reads the literal as the array type the statement casts it to
    /// (`uuid[]` is parsed as `uuid[]` once, not as `text[]` and then converted).
    public static var postgresTypeOID: UInt32 { 0 }
}

/// A JSON document bound as `jsonb` and decoded from `json`/`jsonb` columns.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Hashable {
    /// The JSON text.
    public var text: String

    /// Wraps JSON text (not validated here; the server validates it).
    public init(text: String) { self.text = text }

    /// Encodes a value with `JSONEncoder`.
    public init(encoding value: some Encodable) throws {
        self.text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    /// Decodes the document with `JSONDecoder`.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// `jsonb`.
    public static var postgresTypeOID: UInt32 { 3802 }
    /// The JSON text.
    public var postgresText: String { text }

    /// Wraps the column's text.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) { self.text = postgresText }

    /// The empty object `{}`.
    public static let emptyObject = PostgresJSON(text: "{}")
}
