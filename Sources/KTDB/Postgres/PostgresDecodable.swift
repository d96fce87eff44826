public import Foundation

/// A value that can be decoded from a column in PostgreSQL's text output format.
public protocol PostgresDecodable: Sendable {
    /// Decodes from the column text; `typeOID` is the column's type.
    init(postgresText: String, typeOID: UInt32) throws(KTDBError)
}

func decodingError(_ text: String, _ type: Any.Type, _ oid: UInt32) -> KTDBError {
    KTDBError(code: .decoding, message: "cannot decode a value of type OID \(oid) as \(type)")
}

/// Parses an integer column of any width, failing with the type in the message.
func parseInteger<T: FixedWidthInteger>(_ text: String, _ oid: UInt32) throws(KTDBError) -> T {
    guard let value = T(text) else { throw decodingError(text, T.self, oid) }
    return value
}

extension String: PostgresDecodable {
    /// Any column's text.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) { self = postgresText }
}

extension Int: PostgresDecodable {
    /// `int2`, `int4`, `int8` (and numeric text without a fraction).
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        self = try parseInteger(postgresText, typeOID)
    }
}

extension Int64: PostgresDecodable {
    /// `int2`, `int4`, `int8`.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        self = try parseInteger(postgresText, typeOID)
    }
}

extension Int32: PostgresDecodable {
    /// `int2`, `int4`.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        self = try parseInteger(postgresText, typeOID)
    }
}

extension Double: PostgresDecodable {
    /// `float4`, `float8`, `numeric`, integers.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        guard let value = Double(postgresText) else { throw decodingError(postgresText, Double.self, typeOID) }
        self = value
    }
}

extension Bool: PostgresDecodable {
    /// `bool` (`t`/`f`).
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(postgresText, Bool.self, typeOID)
        }
    }
}

extension UUID: PostgresDecodable {
    /// `uuid` (or text holding one).
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        guard let value = parseCanonicalUUID(postgresText) ?? UUID(uuidString: postgresText) else { throw decodingError(postgresText, UUID.self, typeOID) }
        self = value
    }
}

/// Parses the canonical form PostgreSQL prints (`8-4-4-4-12` hex digits, either case) without
/// Foundation's `sscanf`; `nil` for anything else.
func parseCanonicalUUID(_ text: String) -> UUID? {
    var text = text
    return text.withUTF8 { utf8 -> UUID? in
        guard utf8.count == 36 else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            func nibble(_ c: UInt8) -> UInt8? {
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
                default: nil
                }
            }
            var at = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    guard utf8[at] == UInt8(ascii: "-") else { return false }
                    at += 1
                }
                guard let high = nibble(utf8[at]), let low = nibble(utf8[at + 1]) else { return false }
                out[index] = high << 4 | low
                at += 2
            }
            return true
        }
        return parsed ? UUID(uuid: bytes) : nil
    }
}

extension Date: PostgresDecodable {
    /// `timestamptz` (offset honoured) and `timestamp` (read as UTC).
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        guard let value = PostgresTimestamp.parse(postgresText) else { throw decodingError(postgresText, Date.self, typeOID) }
        self = value
    }
}

extension Array: PostgresDecodable where Element == String {
    /// `text[]`, `varchar[]`.
    public init(postgresText: String, typeOID: UInt32) throws(KTDBError) {
        guard let value = PostgresTextArray.parse(postgresText) else { throw decodingError(postgresText, [String].self, typeOID) }
        self = value
    }
}
