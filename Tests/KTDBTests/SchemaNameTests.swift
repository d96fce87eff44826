import Foundation
import KTDB
import Testing

@Suite("SchemaName")
struct SchemaNameTests {
    @Test("valid graph schema names", arguments: ["graph_news", "graph_a1", "x", String(repeating: "a", count: 63)])
    func valid(name: String) throws {
        let schema = try SchemaName(name)
        #expect(schema.rawValue == name)
        #expect(schema.quoted == "\"\(name)\"")
    }

    @Test(
        "rejected names",
        arguments: [
            "", "public", "pg_catalog", "pg_anything", "information_schema", "Graph", "graph-news", "graph news",
            "graph_x\"; DROP TABLE graphs; --", String(repeating: "a", count: 64), "grāph",
        ])
    func invalid(name: String) {
        #expect(throws: KTDBError.self) { try SchemaName(name) }
    }

    @Test("a table name is qualified with its schema, except in public")
    func tableName() throws {
        let schema = try SchemaName("graph_news")
        #expect(TableName("node_facts", in: schema).sql == "\"graph_news\".node_facts")
        #expect(TableName("node_facts", in: .public).sql == "node_facts")
        let query: PostgresQuery = "SELECT 1 FROM \(TableName("nodes", in: schema)) WHERE id = \(7)"
        #expect(query.sql == "SELECT 1 FROM \"graph_news\".nodes WHERE id = $1")
    }

    @Test("the public schema is explicit")
    func publicSchema() {
        #expect(SchemaName.public.isPublic)
        #expect(SchemaName.public.rawValue == "public")
    }
}

@Suite("PostgresQuery")
struct PostgresQueryTests {
    @Test("interpolated values become parameters, never SQL text")
    func interpolation() throws {
        let slug = "x'; DROP TABLE graphs; --"
        let limit = 10
        let missing: String? = nil
        let schema = try SchemaName("graph_news")
        let query: PostgresQuery = "SELECT * FROM \(identifier: schema).nodes WHERE slug = \(slug) AND n < \(limit) AND d = \(missing)"
        #expect(query.sql == "SELECT * FROM \"graph_news\".nodes WHERE slug = $1 AND n < $2 AND d = $3")
        #expect(query.binds.values == [slug, "10", nil])
        #expect(query.binds.typeOIDs == [25, 20, 25])
        #expect(!query.description.contains("DROP"))
    }
}

@Suite("Text formats")
struct TextFormatTests {
    @Test("text arrays round-trip through PostgreSQL's array literal")
    func arrays() throws {
        let values = ["plain", "with space", "quote\"inside", "back\\slash", "comma,here", "{braces}", "", "NULL", "ünïcode"]
        let encoded = values.postgresText
        #expect(try [String](postgresText: encoded, typeOID: 1009) == values)
        #expect(try [String](postgresText: "{}", typeOID: 1009) == [])
        #expect(try [String](postgresText: "{a,b,\"c d\"}", typeOID: 1009) == ["a", "b", "c d"])
        #expect(throws: KTDBError.self) { try [String](postgresText: "{a,NULL}", typeOID: 1009) }
    }

    @Test("a UUID binds as its lower-case canonical form")
    func uuids() throws {
        for uuid in [UUID(), UUID(), UUID(uuidString: "00000000-0000-0000-0000-000000000000")!, UUID(uuidString: "FFFFFFFF-ABCD-EF01-2345-6789ABCDEF0A")!] {
            #expect(uuid.postgresText == uuid.uuidString.lowercased())
            #expect(try UUID(postgresText: uuid.postgresText, typeOID: 2950) == uuid)
            #expect(try UUID(postgresText: uuid.uuidString, typeOID: 2950) == uuid)
        }
        for bad in ["", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "00000000x0000-0000-0000-000000000000", "00000000-0000-0000-0000-0000000000000"] {
            #expect(throws: KTDBError.self) { try UUID(postgresText: bad, typeOID: 2950) }
        }
    }

    @Test("a nullable array literal quotes and escapes each element, byte for byte, and leaves NULL unquoted")
    func nullableArrays() {
        let array = PostgresArray(text: ["a", nil, "quote\"and\\slash", "", "NULL", "ünï ✓"])
        #expect(array.postgresText == #"{"a",NULL,"quote\"and\\slash","","NULL","ünï ✓"}"#)
        #expect(PostgresArray(text: []).postgresText == "{}")
        #expect(PostgresArray([1, nil, 3] as [Int?]).postgresText == #"{"1",NULL,"3"}"#)
    }

    @Test("timestamps format in UTC and parse with offsets")
    func timestamps() throws {
        let date = Date(timeIntervalSince1970: 1_767_225_600.123456)  // 2026-01-01 00:00:00.123456 UTC
        #expect(date.postgresText == "2026-01-01 00:00:00.123456+00")
        let parsed = try Date(postgresText: "2026-01-01 01:00:00.123456+01", typeOID: 1184)
        #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000001)
        let naive = try Date(postgresText: "2026-01-01 00:00:00.123456", typeOID: 1114)
        #expect(abs(naive.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000001)
        let old = Date(timeIntervalSince1970: -86400 * 365.25 * 50)
        #expect(abs(try Date(postgresText: old.postgresText, typeOID: 1184).timeIntervalSince1970 - old.timeIntervalSince1970) < 0.000001)
    }

    @Test("errors keep values out of description")
    func errorText() {
        let error = KTDBError(code: .server, message: "duplicate key value violates unique constraint", sqlState: "23505", serverDetail: "Key (slug)=(secret-slug) already exists.")
        #expect(error.description == "KTDBError(code: server, sqlState: 23505)")
        #expect(error.debugDescription.contains("duplicate key"))
        #expect(error.isUniqueViolation)
    }
}
