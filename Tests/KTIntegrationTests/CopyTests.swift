import Foundation
import KTConfig
import KTDB
import Logging
import Synchronization
import Testing

/// The COPY streaming API (issue 18): `copyOut`/`copyIn` driven by the event loop.
@Suite("COPY (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct CopyTests {
    let logger = TestEnvironment.logger

    private func withScratchSchema<T: Sendable>(_ url: DatabaseURL, _ body: (PostgresConnection, SchemaName) async throws -> T) async throws -> T {
        let schema = try SchemaName(TestEnvironment.uniqueName("copy"))
        return try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
            try await c.execute(simple: "CREATE SCHEMA \(schema.quoted)", logger: logger)
            do {
                let value = try await body(c, schema)
                try await c.execute(simple: "DROP SCHEMA \(schema.quoted) CASCADE", logger: logger)
                return value
            } catch {
                try? await c.execute(simple: "DROP SCHEMA \(schema.quoted) CASCADE", logger: logger)
                throw error
            }
        }
    }

    private static let columns = "id bigint PRIMARY KEY, label text, tags text[], at timestamptz, score float8, meta jsonb, blob bytea"

    @Test("200,000 rows of mixed types go out in chunks and back in, equal row for row, in binary and text; the pool's connections stay usable", arguments: [CopyFormat.binary, .text])
    func roundTrip(format: CopyFormat) async throws {
        let url = try TestEnvironment.systemGraphURL
        try await withScratchSchema(url) { c, schema in
            try await c.execute(
                simple: """
                    CREATE TABLE \(schema.quoted).source (\(Self.columns));
                    CREATE TABLE \(schema.quoted).target (\(Self.columns));
                    INSERT INTO \(schema.quoted).source
                    SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'label ' || i || E' tab\\there ' || repeat('é', i % 5) END,
                           ARRAY['a' || i, 'b'], '2026-01-01'::timestamptz + i * interval '1 second', i / 3.0,
                           jsonb_build_object('i', i, 'quote', 'say "hi"'), decode(md5(i::text), 'hex')
                    FROM generate_series(1, 200000) AS i
                    """, logger: logger)
            let source = try TableName(validating: "source", in: schema), target = try TableName(validating: "target", in: schema)
            let chunks = Mutex<[Int]>([])
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { reader in
                let copiedIn = try await c.copyIn(target, format: format, logger: logger) { writer in
                    let copiedOut = try await reader.copyOut(source, format: format, logger: logger) { chunk in
                        chunks.withLock { $0.append(chunk.count) }
                        try await writer.write(chunk)
                    }
                    #expect(copiedOut == 200_000)
                }
                #expect(copiedIn == 200_000)
                // The reader's connection serves statements again.
                #expect(try await reader.query("SELECT 1", logger: logger).rows.count == 1)
            }
            #expect(chunks.withLock { $0.count } > 4, "the data came in several chunks")
            #expect(chunks.withLock { $0.max() ?? 0 } <= 1024 * 1024)
            let differences = try await c.query(
                """
                SELECT count(*) FROM ((TABLE \(unsafeRaw: source.sql) EXCEPT ALL TABLE \(unsafeRaw: target.sql))
                                      UNION ALL (TABLE \(unsafeRaw: target.sql) EXCEPT ALL TABLE \(unsafeRaw: source.sql))) d
                """, logger: logger
            ).first!.decode(0, as: Int.self)
            #expect(differences == 0)
        }
    }

    @Test("columns are copied in the order named; an empty table copies zero rows")
    func columnsAndEmpty() async throws {
        try await withScratchSchema(try TestEnvironment.systemGraphURL) { c, schema in
            try await c.execute(
                simple: "CREATE TABLE \(schema.quoted).a (x int, y text); CREATE TABLE \(schema.quoted).b (y text, x int); INSERT INTO \(schema.quoted).a VALUES (1, 'one'), (2, NULL)", logger: logger)
            let a = try TableName(validating: "a", in: schema), b = try TableName(validating: "b", in: schema)
            var data: [UInt8] = []
            #expect(try await c.copyOut(a, columns: ["y", "x"], logger: logger) { data += $0 } == 2)
            #expect(try await c.copyIn(b, logger: logger) { try await $0.write(data) } == 2)
            let rows = try await c.query("SELECT y, x FROM \(unsafeRaw: b.sql) ORDER BY x", logger: logger).rows
            #expect(try rows.map { try $0.decode(0, as: String?.self) } == ["one", nil])
            try await c.execute(simple: "TRUNCATE \(schema.quoted).a", logger: logger)
            var chunks = 0
            #expect(try await c.copyOut(a, format: .text, logger: logger) { _ in chunks += 1 } == 0)
            #expect(chunks == 0)
        }
    }

    @Test("a producer that throws aborts the COPY: nothing of it stays, its error comes back, the connection goes on")
    func producerFails() async throws {
        struct Stop: Error {}
        try await withScratchSchema(try TestEnvironment.systemGraphURL) { c, schema in
            try await c.execute(simple: "CREATE TABLE \(schema.quoted).t (x int)", logger: logger)
            let t = try TableName(validating: "t", in: schema)
            await #expect(throws: Stop.self) {
                try await c.copyIn(t, format: .text, logger: logger) { writer in
                    try await writer.write(Array("1\n2\n".utf8))
                    throw Stop()
                }
            }
            #expect(try await c.query("SELECT count(*) FROM \(unsafeRaw: t.sql)", logger: logger).first!.decode(0, as: Int.self) == 0)
        }
    }

    @Test("data the server rejects fails with the server's error (SQLSTATE 22P02) and nothing stays; the connection goes on")
    func badData() async throws {
        try await withScratchSchema(try TestEnvironment.systemGraphURL) { c, schema in
            try await c.execute(simple: "CREATE TABLE \(schema.quoted).t (x int)", logger: logger)
            let t = try TableName(validating: "t", in: schema)
            do {
                try await c.copyIn(t, format: .text, logger: logger) { writer in
                    try await writer.write(Array("1\nnot a number\n".utf8))
                    // More data after the server gave up: still a clean error.
                    for _ in 0..<50 { try await writer.write(Array(String(repeating: "3\n", count: 10_000).utf8)) }
                }
                Issue.record("the COPY went through")
            } catch let error as KTDBError {
                #expect(error.sqlState == "22P02", "\(error.debugDescription)")
            }
            #expect(try await c.query("SELECT count(*) FROM \(unsafeRaw: t.sql)", logger: logger).first!.decode(0, as: Int.self) == 0)
        }
    }

    @Test("a reader that throws midway gets its error back and the connection is retired, not left streaming")
    func consumerFails() async throws {
        struct Stop: Error {}
        try await withScratchSchema(try TestEnvironment.systemGraphURL) { c, schema in
            try await c.execute(simple: "CREATE TABLE \(schema.quoted).t AS SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 100000) i", logger: logger)
            let t = try TableName(validating: "t", in: schema)
            try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0) { pool in
                await #expect(throws: Stop.self) {
                    try await pool.withConnection(logger: logger) { p in
                        try await p.copyOut(t, logger: logger) { _ in throw Stop() }
                    }
                }
                let rows = try await pool.withConnection(logger: logger) { try await $0.query("SELECT 1", logger: logger).rows.count }
                #expect(rows == 1)
            }
        }
    }

    @Test("through PgBouncer in transaction mode: out of and into write-db")
    func throughPgBouncer() async throws {
        let url = try TestEnvironment.pgbouncerURL
        try await withScratchSchema(try TestEnvironment.systemWriteURL) { direct, schema in
            try await direct.execute(simple: "CREATE TABLE \(schema.quoted).s AS SELECT i FROM generate_series(1, 5000) i; CREATE TABLE \(schema.quoted).t (i int)", logger: logger)
            let s = try TableName(validating: "s", in: schema), t = try TableName(validating: "t", in: schema)
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url, prepared: .disabled), logger: logger) { c in
                var data: [UInt8] = []
                let out = try await c.copyOut(s, logger: logger) { data += $0 }
                let into = try await c.copyIn(t, logger: logger) { [data] in try await $0.write(data) }
                #expect(out == 5000 && into == 5000)
            }
            #expect(try await direct.query("SELECT sum(i) FROM \(unsafeRaw: t.sql)", logger: logger).first!.decode(0, as: Int.self) == 5000 * 5001 / 2)
        }
    }

    @Test("a table or column name that is not an identifier is refused before anything is sent")
    func identifiers() async throws {
        #expect(throws: KTDBError.self) { try TableName(validating: "x; DROP TABLE y", in: .public) }
        #expect(throws: KTDBError.self) { try TableName(validating: "Nodes", in: .public) }
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(try TestEnvironment.systemGraphURL), logger: logger) { c in
            await #expect(throws: KTDBError.self) {
                try await c.copyOut(try TableName(validating: "pg_class", in: .public), columns: ["relname\" FROM x"], logger: logger) { _ in }
            }
        }
    }
}
