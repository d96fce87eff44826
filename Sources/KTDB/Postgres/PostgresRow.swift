/// One result row; values are copied out of libpq, so a row outlives its result.
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    /// The number of columns.
    public var count: Int { values.count }

    /// Decodes column `index` as `T`.
    ///
    /// - Throws: ``KTDBError/Code/decoding`` when the column is `NULL` or does not parse as `T`.
    public func decode<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws(KTDBError) -> T {
        guard index >= 0, index < values.count else {
            throw KTDBError(code: .decoding, message: "column index \(index) out of range (\(values.count) columns)")
        }
        guard let text = values[index] else {
            throw KTDBError(code: .decoding, message: "column '\(columns.names[index])' is NULL; decode it as an Optional")
        }
        return try T(postgresText: text, typeOID: columns.typeOIDs[index])
    }

    /// Decodes column `index` as `T?` (`nil` for `NULL`).
    public func decode<T: PostgresDecodable>(_ index: Int, as type: T?.Type) throws(KTDBError) -> T? {
        guard index >= 0, index < values.count else {
            throw KTDBError(code: .decoding, message: "column index \(index) out of range (\(values.count) columns)")
        }
        guard let text = values[index] else { return nil }
        return try T(postgresText: text, typeOID: columns.typeOIDs[index])
    }

    /// Decodes the column named `name` as `T`.
    public func decode<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws(KTDBError) -> T {
        try decode(try columns.index(of: name), as: type)
    }

    /// Decodes the column named `name` as `T?` (`nil` for `NULL`).
    public func decode<T: PostgresDecodable>(_ name: String, as type: T?.Type) throws(KTDBError) -> T? {
        try decode(try columns.index(of: name), as: type)
    }

    /// Whether the column named `name` is `NULL`.
    public func isNull(_ name: String) throws(KTDBError) -> Bool {
        values[try columns.index(of: name)] == nil
    }
}

/// The column names and types of a result, shared by its rows.
final class PostgresColumns: Sendable {
    let names: [String]
    let typeOIDs: [UInt32]
    private let indexByName: [String: Int]

    init(names: [String], typeOIDs: [UInt32]) {
        self.names = names
        self.typeOIDs = typeOIDs
        var map: [String: Int] = [:]
        for (i, name) in names.enumerated() where map[name] == nil { map[name] = i }
        self.indexByName = map
    }

    func index(of name: String) throws(KTDBError) -> Int {
        guard let index = indexByName[name] else {
            throw KTDBError(code: .decoding, message: "no column named '\(name)' in the result")
        }
        return index
    }
}

/// The result of one statement: its rows and the number of rows it affected.
public struct PostgresResult: Sendable {
    /// The rows returned (empty for statements without a result set).
    public let rows: [PostgresRow]
    /// Rows inserted, updated or deleted (`PQcmdTuples`), or the row count of a `SELECT`.
    public let affectedRows: Int
    /// `COPY TO STDOUT` data read by one ``LoopJob/Request/copyRead`` job.
    var copyData: [UInt8] = []

    init(rows: [PostgresRow], affectedRows: Int, copyData: [UInt8] = []) {
        self.rows = rows
        self.affectedRows = affectedRows
        self.copyData = copyData
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}
