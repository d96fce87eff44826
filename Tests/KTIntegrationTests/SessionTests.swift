import Foundation
import KTConfig
import KTDB
import Logging
import Testing

@Suite("Sessions and transactions (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct SessionTests {
    let logger = TestEnvironment.logger

    /// Two schemas with a table of the same name holding different rows.
    func makeSchemas(_ pool: PostgresConnectionPool) async throws -> (SchemaName, SchemaName) {
        let a = try SchemaName(TestEnvironment.uniqueName("graph_a"))
        let b = try SchemaName(TestEnvironment.uniqueName("graph_b"))
        try await pool.withConnection(logger: logger) { c in
            for (schema, value) in [(a, "in-a"), (b, "in-b")] {
                try await c.execute(simple: "CREATE SCHEMA \(schema.quoted); CREATE TABLE \(schema.quoted).items (id serial PRIMARY KEY, label text UNIQUE)", logger: logger)
                try await c.query("INSERT INTO \(identifier: schema).items (label) VALUES (\(value))", logger: logger)
            }
        }
        return (a, b)
    }

    @Test("a schema-bound session runs in its schema; search_path is per transaction", arguments: [PostgresConnection.PreparedStatementMode.cached, .disabled])
    func schemaBinding(mode: PostgresConnection.PreparedStatementMode) async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL, size: 1, maxOverflow: 0, prepared: mode) { pool in
            let (a, b) = try await makeSchemas(pool)
            let sessionA = DatabaseSession(pool: pool, schema: a)
            let sessionB = DatabaseSession(pool: pool, schema: b)
            // One connection serves both sessions alternately: the same SQL text sees different tables.
            for _ in 0..<3 {
                #expect(try await sessionA.query("SELECT label FROM items", logger: logger).first?.decode(0, as: String.self) == "in-a")
                #expect(try await sessionB.query("SELECT label FROM items", logger: logger).first?.decode(0, as: String.self) == "in-b")
            }
            // Outside a session transaction the connection is back on the default search_path.
            let path = try await pool.withConnection(logger: logger) { try await $0.query("SHOW search_path", logger: logger).first!.decode(0, as: String.self) }
            #expect(!path.contains(a.rawValue))
            // A transaction knows its schema; a qualified table name needs no search_path at all.
            #expect(try await sessionB.withTransaction(logger: logger) { $0.schema } == b)
            let unbound = DatabaseSession(pool: pool)
            #expect(try await unbound.query("SELECT label FROM \(TableName("items", in: a))", logger: logger).first?.decode(0, as: String.self) == "in-a")
            #expect(try await unbound.query("SELECT label FROM \(TableName("items", in: b))", logger: logger).first?.decode(0, as: String.self) == "in-b")
        }
    }

    @Test(
        "a table missing from the session's schema is an error, never the table of the same name in public (issue 17, item 21)",
        arguments: [PostgresConnection.PreparedStatementMode.cached, .disabled])
    func noFallbackToPublic(mode: PostgresConnection.PreparedStatementMode) async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL, size: 1, maxOverflow: 0, prepared: mode) { pool in
            let (a, _) = try await makeSchemas(pool)
            let table = TestEnvironment.uniqueName("kt_probe")
            let unbound = DatabaseSession(pool: pool)
            try await unbound.query("CREATE TABLE \(unsafeRaw: "public." + table) (label text)", logger: logger)
            try await unbound.query("INSERT INTO \(unsafeRaw: "public." + table) VALUES ('the default graph''s row')", logger: logger)
            let session = DatabaseSession(pool: pool, schema: a)
            let sql: PostgresQuery = "SELECT label FROM \(unsafeRaw: table)"
            for attempt in ["statement", "transaction"] {
                do {
                    let rows =
                        attempt == "statement"
                        ? try await session.query(sql, logger: logger).rows
                        : try await session.withTransaction(logger: logger) { try await $0.query(sql).rows }
                    Issue.record("\(attempt): read \(rows.count) row(s) of public.\(table)")
                } catch let error as KTDBError {
                    #expect(error.sqlState == "42P01", "\(attempt): \(error.message)")
                }
            }
            try await unbound.query("DROP TABLE \(unsafeRaw: "public." + table)", logger: logger)
        }
    }

    @Test("a transaction's setup settings hold inside it, with the schema's search_path, and end with it")
    func transactionSetup() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL, size: 1, maxOverflow: 0) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            let inside = try await session.withTransaction(setup: "SET LOCAL jit = off; SET LOCAL statement_timeout = '4321ms'", logger: logger) { tx in
                (
                    try await tx.query("SHOW jit").first!.decode(0, as: String.self),
                    try await tx.query("SHOW statement_timeout").first!.decode(0, as: String.self),
                    try await tx.query("SELECT label FROM items").first!.decode(0, as: String.self)
                )
            }
            #expect(inside.0 == "off" && inside.1 == "4321ms" && inside.2 == "in-a")
            // The one connection of the pool is back on the server's settings.
            let after = try await pool.withConnection(logger: logger) { try await $0.query("SHOW statement_timeout", logger: logger).first!.decode(0, as: String.self) }
            #expect(after != "4321ms")
        }
    }

    @Test(
        "a schema-bound statement (one pipeline) commits; when it fails it is rolled back and the connection serves the next", arguments: [PostgresConnection.PreparedStatementMode.cached, .disabled])
    func pipelinedStatement(mode: PostgresConnection.PreparedStatementMode) async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL, size: 1, maxOverflow: 0, prepared: mode) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            try await session.query("INSERT INTO items (label) VALUES (\("second"))", logger: logger)
            for _ in 0..<2 {
                // Fails at execution (unique violation) and at parse time (unknown column).
                let duplicate = await #expect(throws: KTDBError.self) { try await session.query("INSERT INTO items (label) VALUES (\("second"))", logger: logger) }
                #expect(duplicate?.sqlState == "23505")
                let unknown = await #expect(throws: KTDBError.self) { try await session.query("SELECT nope FROM items", logger: logger) }
                #expect(unknown?.sqlState == "42703")
                // The one connection is outside any transaction and back on the default search_path.
                let path = try await pool.withConnection(logger: logger) { c in
                    #expect(c.isIdleOutsideTransaction)
                    return try await c.query("SHOW search_path", logger: logger).first!.decode(0, as: String.self)
                }
                #expect(!path.contains(a.rawValue))
                let labels = try await session.query("SELECT label FROM items ORDER BY id", logger: logger).rows.map { try $0.decode(0, as: String.self) }
                #expect(labels == ["in-a", "second"])
            }
            // With prepared statements, the search_path setting is prepared once and reused.
            let prepared = try await pool.withConnection(logger: logger) { c in
                try await c.query("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE \("%set_config('search_path'%")", logger: logger).first!.decode(0, as: Int.self)
            }
            #expect(prepared == (mode == .cached ? 1 : 0))
        }
    }

    @Test("schema-bound sessions work through PgBouncer in transaction mode with prepared statements disabled")
    func throughPgBouncer() async throws {
        let setupURL = try TestEnvironment.systemWriteURL
        let (a, b) = try await TestEnvironment.withPool(setupURL, size: 1, maxOverflow: 0) { try await makeSchemas($0) }
        try await TestEnvironment.withPool(try TestEnvironment.pgbouncerURL, size: 8, maxOverflow: 8, prepared: .disabled) { pool in
            let sessionA = DatabaseSession(pool: pool, schema: a)
            let sessionB = DatabaseSession(pool: pool, schema: b)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        let (session, expected) = i % 2 == 0 ? (sessionA, "in-a") : (sessionB, "in-b")
                        // In turn a transaction, a single pipelined statement and a schema-qualified statement.
                        let label =
                            switch i % 6 {
                            case 0, 1:
                                try await session.withTransaction(logger: logger) { tx in
                                    try await tx.query("SELECT label FROM items WHERE id = \(1)").first?.decode(0, as: String.self)
                                }
                            case 2, 3: try await session.query("SELECT label FROM items WHERE id = \(1)", logger: logger).first?.decode(0, as: String.self)
                            default:
                                try await DatabaseSession(pool: pool).query("SELECT label FROM \(TableName("items", in: session.schema)) WHERE id = \(1)", logger: logger)
                                    .first?.decode(0, as: String.self)
                            }
                        #expect(label == expected)
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("commit persists, a throwing body rolls back")
    func commitAndRollback() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            try await session.withTransaction(logger: logger) { try await $0.query("INSERT INTO items (label) VALUES (\("kept"))") }
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await session.withTransaction(logger: logger) { tx in
                    try await tx.query("INSERT INTO items (label) VALUES (\("dropped"))")
                    throw Boom()
                }
            }
            let labels = try await session.query("SELECT label FROM items ORDER BY id", logger: logger).rows.map { try $0.decode(0, as: String.self) }
            #expect(labels == ["in-a", "kept"])
        }
    }

    @Test("savepoints: one failing item does not poison the batch")
    func savepoints() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            let failures = try await session.withTransaction(logger: logger) { tx in
                var failures = 0
                for label in ["one", "in-a", "two", "three"] {  // "in-a" violates the unique constraint
                    do {
                        try await tx.withSavepoint { try await $0.query("INSERT INTO items (label) VALUES (\(label))") }
                    } catch let error as KTDBError where error.isUniqueViolation {
                        failures += 1
                    }
                }
                // Nested savepoint: inner failure, outer work kept.
                try await tx.withSavepoint { outer in
                    try await outer.query("INSERT INTO items (label) VALUES (\("outer"))")
                    _ = try? await outer.withSavepoint { try await $0.query("INSERT INTO items (label) VALUES (\("outer"))") }
                }
                return failures
            }
            #expect(failures == 1)
            let labels = try await session.query("SELECT label FROM items ORDER BY id", logger: logger).rows.map { try $0.decode(0, as: String.self) }
            #expect(labels == ["in-a", "one", "two", "three", "outer"])
        }
    }

    @Test("a swallowed error does not commit silently")
    func swallowedError() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            do {
                try await session.withTransaction(logger: logger) { tx in
                    try await tx.query("INSERT INTO items (label) VALUES (\("lost"))")
                    _ = try? await tx.query("INSERT INTO items (label) VALUES (\("in-a"))")
                }
                Issue.record("expected an error")
            } catch let error as KTDBError {
                #expect(error.sqlState == "25P02")
            }
            #expect(try await session.query("SELECT count(*) FROM items", logger: logger).first?.decode(0, as: Int.self) == 1)

            // The same inside a savepoint: the savepoint's work is undone, the outer work commits.
            try await session.withTransaction(logger: logger) { tx in
                try await tx.query("INSERT INTO items (label) VALUES (\("outer-kept"))")
                do {
                    try await tx.withSavepoint { item in
                        try await item.query("INSERT INTO items (label) VALUES (\("inner-lost"))")
                        _ = try? await item.query("INSERT INTO items (label) VALUES (\("in-a"))")
                    }
                    Issue.record("expected an error")
                } catch let error as KTDBError {
                    #expect(error.sqlState == "25P02")
                }
            }
            let labels = try await session.query("SELECT label FROM items ORDER BY id", logger: logger).rows.map { try $0.decode(0, as: String.self) }
            #expect(labels == ["in-a", "outer-kept"])
        }
    }

    @Test("a task preferring the pool's executor runs transactions on the loop thread")
    func poolExecutor() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemWriteURL) { pool in
            let (a, _) = try await makeSchemas(pool)
            let session = DatabaseSession(pool: pool, schema: a)
            let labels = try await withTaskExecutorPreference(pool.executor) {
                try await session.withTransaction(logger: logger) { tx in
                    try await tx.query("INSERT INTO items (label) VALUES (\("from-loop"))")
                    return try await tx.query("SELECT label FROM items ORDER BY id").rows.map { try $0.decode(0, as: String.self) }
                }
            }
            #expect(labels == ["in-a", "from-loop"])
        }
    }
}
