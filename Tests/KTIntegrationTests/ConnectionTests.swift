import Foundation
import KTConfig
import KTCore
import KTDB
import Logging
import Synchronization
import Testing

@Suite("Connection (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct ConnectionTests {
    let logger = TestEnvironment.logger

    @Test("a password with + % @ / : connects through scram-sha-256, and application_name is set")
    func percentEncodedPassword() async throws {
        let url = try TestEnvironment.systemGraphURL
        #expect(url.password?.revealedValue == TestEnvironment.variables["KT_TEST_RAW_PASSWORD"])
        #expect(url.password.map { ["+", "%", "@", "/", ":"].allSatisfy($0.revealedValue.contains) } == true)
        let config = PostgresConnection.Configuration(url: url, applicationName: "kt-provision-news")
        try await PostgresConnection.withConnection(configuration: config, logger: logger) { connection in
            let row = try #require(
                try await connection.query(
                    "SELECT current_user, current_setting('application_name')",
                    logger: logger
                ).first)
            #expect(try row.decode(0, as: String.self) == "kt")
            #expect(try row.decode(1, as: String.self) == "kt-provision-news")
        }
    }

    @Test("a wrong password fails with connectionFailed and no secret in any text")
    func wrongPassword() async throws {
        var url = try TestEnvironment.systemGraphURL
        url.password = Secret("wrong-secret-xyz")
        do {
            _ = try await PostgresConnection.connect(configuration: .init(url: url), logger: logger)
            Issue.record("expected a failure")
        } catch let error as KTDBError {
            #expect(error.code == .connectionFailed)
            for text in [error.description, error.debugDescription, error.message] {
                #expect(!text.contains("wrong-secret-xyz"))
                #expect(!text.contains(TestEnvironment.variables["KT_TEST_RAW_PASSWORD"] ?? "-"))
            }
        }
    }

    @Test("sslmode is honoured: require fails against a server without TLS, disable works")
    func sslMode() async throws {
        let url = try TestEnvironment.systemGraphURL
        await #expect(throws: KTDBError.self) {
            _ = try await PostgresConnection.connect(configuration: .init(url: url, defaultSSLMode: .require), logger: logger)
        }
        let connection = try await PostgresConnection.connect(configuration: .init(url: url, defaultSSLMode: .disable), logger: logger)
        let ssl = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: logger)
        #expect(try ssl.first?.decode(0, as: Bool.self) == false)
        await connection.close()
    }

    @Test("every column type of the schemas round-trips", arguments: [PostgresConnection.PreparedStatementMode.cached, .disabled])
    func typeRoundTrip(mode: PostgresConnection.PreparedStatementMode) async throws {
        let url = try TestEnvironment.systemGraphURL
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url, prepared: mode), logger: logger) { c in
            try await c.execute(
                simple: """
                    CREATE TEMP TABLE t (u uuid, tx text, vc varchar(50), i4 integer, i8 bigint, f8 double precision,
                      b boolean, ts timestamp, tstz timestamptz, j jsonb, arr text[], varr varchar(20)[])
                    """, logger: logger)
            let id = UUID()
            let date = Date(timeIntervalSince1970: 1_780_000_000.654321)
            let array = ["a", "b c", "quote\"", "back\\slash", "", "ünï", "NULL"]
            let json = PostgresJSON(text: #"{"k": ["one", "two", null]}"#)
            try await c.query(
                """
                INSERT INTO t VALUES (\(id), \("héllo 'world'"), \("v"), \(Int32(-42)), \(Int.max), \(3.141592653589793),
                  \(true), \(date), \(date), \(json), \(array), \(["x", "y"]))
                """, logger: logger)
            try await c.query("INSERT INTO t (u) VALUES (\(UUID()))", logger: logger)
            let rows = try await c.query("SELECT * FROM t ORDER BY i4 NULLS LAST", logger: logger).rows
            let row = try #require(rows.first)
            #expect(try row.decode("u", as: UUID.self) == id)
            #expect(try row.decode("tx", as: String.self) == "héllo 'world'")
            #expect(try row.decode("vc", as: String.self) == "v")
            #expect(try row.decode("i4", as: Int32.self) == -42)
            #expect(try row.decode("i8", as: Int.self) == Int.max)
            #expect(try row.decode("f8", as: Double.self) == 3.141592653589793)
            #expect(try row.decode("b", as: Bool.self) == true)
            #expect(abs(try row.decode("ts", as: Date.self).timeIntervalSince(date)) < 0.000002)
            #expect(abs(try row.decode("tstz", as: Date.self).timeIntervalSince(date)) < 0.000002)
            #expect(try row.decode("j", as: PostgresJSON.self).decode([String: [String?]].self)["k"]?.count == 3)
            #expect(try row.decode("arr", as: [String].self) == array)
            #expect(try row.decode("varr", as: [String].self) == ["x", "y"])
            let nulls = rows[1]
            #expect(try nulls.decode("tx", as: String?.self) == nil)
            #expect(try nulls.decode("arr", as: [String]?.self) == nil)
            #expect(throws: KTDBError.self) { try nulls.decode("i4", as: Int.self) }
            #expect(throws: KTDBError.self) { try row.decode("tx", as: Int.self) }
        }
    }

    @Test("PostgresArray binds NULL elements as NULL and any text as itself, cast to the statement's array type")
    func nullableArrays() async throws {
        let url = try TestEnvironment.systemGraphURL
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url, prepared: .cached), logger: logger) { c in
            let texts: [String?] = ["a", nil, "NULL", "", "quote\"", "back\\slash", "{brace,comma}", "ünï", " padded "]
            let ints: [Int?] = [1, nil, -7, Int.max, 0, nil, 2, 3, 4]
            let date = Date(timeIntervalSince1970: 1_780_000_000.654321)
            let dates: [Date?] = [date, nil, date, nil, date, nil, date, nil, date]
            let rows = try await c.query(
                """
                SELECT t, t IS NULL AS null_t, i, d FROM unnest(\(PostgresArray(texts))::text[], \(PostgresArray(ints))::bigint[], \(PostgresArray(dates))::timestamptz[])
                    WITH ORDINALITY AS u(t, i, d, n) ORDER BY n
                """, logger: logger
            ).rows
            #expect(try rows.map { try $0.decode("t", as: String?.self) } == texts)
            #expect(try rows.map { try $0.decode("null_t", as: Bool.self) } == texts.map { $0 == nil })
            #expect(try rows.map { try $0.decode("i", as: Int?.self) } == ints)
            #expect(try rows.map { try $0.decode("d", as: Date?.self).map { abs($0.timeIntervalSince(date)) < 0.000002 } } == dates.map { $0.map { _ in true } })
            // An element that is not a value of the cast type is the server's error, not a silent NULL.
            await #expect(throws: KTDBError.self) { try await c.query("SELECT \(PostgresArray(["1", "x"] as [String?]))::int[]", logger: logger) }
        }
    }

    @Test(
        "a value holding NUL is refused with a clear error, never cut short; the connection stays usable (issue 17, item 5)",
        arguments: [PostgresConnection.PreparedStatementMode.cached, .disabled])
    func nulInValue(mode: PostgresConnection.PreparedStatementMode) async throws {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(try TestEnvironment.systemGraphURL, prepared: mode), logger: logger) { c in
            do {
                _ = try await c.query("SELECT length(\("ab\u{0}cd")::text)", logger: logger)
                Issue.record("a NUL went through")
            } catch let error as KTDBError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("NUL"))
            }
            #expect(try await c.query("SELECT 1", logger: logger).rows.count == 1)
            // In an array element too.
            await #expect(throws: KTDBError.self) { try await c.query("SELECT \(PostgresArray(["a", "b\u{0}"] as [String?]))::text[]", logger: logger) }
        }
    }

    @Test("COPY through query() fails with a clear error at once and the connection is closed, not spun on (issue 17, item 3)")
    func copyIsRefused() async throws {
        let url = try TestEnvironment.systemGraphURL
        try await TestEnvironment.withPool(url) { pool in
            for statement in ["COPY (SELECT 1) TO STDOUT", "COPY kt_copy_probe FROM STDIN"] {
                do {
                    try await pool.withConnection(logger: logger) { c in
                        try await c.execute(simple: "CREATE TEMP TABLE IF NOT EXISTS kt_copy_probe (x int)", logger: logger)
                        _ = try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    Issue.record("\(statement) went through")
                } catch let error as KTDBError {
                    #expect(error.message.contains("COPY goes through copyOut/copyIn"), "\(error.message)")
                }
                // The pool goes on with a fresh connection.
                #expect(try await pool.withConnection(logger: logger) { try await $0.query("SELECT 2", logger: logger).rows.count } == 1)
            }
        }
    }

    @Test("a task cancelled while the network is silent returns at once with `cancelled`, and the pool never reuses that connection (issue 17, items 1 and 2)")
    func cancelDuringPartition() async throws {
        let url = try TestEnvironment.systemGraphURL
        let proxy = try TCPProxy(before: url)
        defer { proxy.stop() }
        try await TestEnvironment.withPool(proxy.route(url), size: 1, maxOverflow: 0) { pool in
            let first = try await pool.withConnection(logger: logger) { try await $0.query("SELECT pg_backend_pid()", logger: logger).first!.decode(0, as: Int.self) }
            proxy.freeze()
            let task = Task {
                try await pool.withConnection(logger: logger) { try await $0.query("SELECT 1", logger: logger) }
            }
            // Cancelled once its statement is through to the proxy, which holds it. Should the
            // cancellation not be honoured, the statement is answered once the network is back.
            #expect(try await TestEnvironment.waitUntil(.seconds(30)) { proxy.held == 1 } != nil)
            let watchdog = Watchdog { proxy.thaw() }
            task.cancel()
            await #expect { try await task.value } throws: { ($0 as? KTDBError)?.code == .cancelled }
            #expect(await watchdog.disarm() == false, "the task ended only once the network came back")
            proxy.thaw()
            // The abandoned connection was closed: the next statement runs on a new backend and is not hit by the late cancel.
            for _ in 0..<3 {
                let next = try await pool.withConnection(logger: logger) { try await $0.query("SELECT pg_backend_pid()", logger: logger).first!.decode(0, as: Int.self) }
                #expect(next != first)
            }
        }
    }

    @Test("a task cancelled during a long statement returns at once; the next user of the pool gets another backend and its statement succeeds (issue 17, item 1)")
    func cancelledStatementIsNeverReused() async throws {
        let url = try TestEnvironment.systemGraphURL
        try await TestEnvironment.withPool(url, size: 1, maxOverflow: 0) { pool in
            for _ in 0..<5 {
                let pid = try await pool.withConnection(logger: logger) { try await $0.query("SELECT pg_backend_pid()", logger: logger).first!.decode(0, as: Int.self) }
                let task = Task { try await pool.withConnection(logger: logger) { try await $0.query("SELECT pg_sleep(5)", logger: logger) } }
                // Cancelled once the statement runs on the server (a fixed delay was not enough on
                // a loaded machine: the task had not sent it yet, and nothing was abandoned).
                let running = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { watcher in
                    try await TestEnvironment.waitUntil(.seconds(30)) { try await Self.sleeping(pid: pid, seenBy: watcher, logger: logger) }
                }
                #expect(running != nil)
                task.cancel()
                let outcome = await task.result
                #expect((try? outcome.get()) == nil)
                let next = try await pool.withConnection(logger: logger) { c in
                    (
                        try await c.query("SELECT pg_backend_pid()", logger: logger).first!.decode(0, as: Int.self),
                        try await c.query("SELECT count(*) FROM generate_series(1, 20000)", logger: logger).first!.decode(0, as: Int.self)
                    )
                }
                #expect(next.0 != pid)
                #expect(next.1 == 20000)
            }
        }
    }

    @Test("statement_timeout per connection configuration, and keepalive and tcp_user_timeout defaults (issue 17, item 2)")
    func timeouts() async throws {
        var configuration = TestEnvironment.connectionConfiguration(try TestEnvironment.systemGraphURL)
        configuration.statementTimeout = .milliseconds(300)
        try await PostgresConnection.withConnection(configuration: configuration, logger: logger) { c in
            #expect(try await c.query("SHOW statement_timeout", logger: logger).first?.decode(0, as: String.self) == "300ms")
            do {
                _ = try await c.query("SELECT pg_sleep(5)", logger: logger)
                Issue.record("statement_timeout did not apply")
            } catch let error as KTDBError {
                #expect(error.sqlState == "57014")
            }
        }
        let defaults = PostgresConnection.Configuration(url: try TestEnvironment.systemGraphURL)
        #expect(defaults.keepalives == .init(idle: .seconds(30), interval: .seconds(10), count: 3))
        #expect(defaults.tcpUserTimeout == .seconds(60))
    }

    @Test("a cached statement decodes by the columns of each result: after a rename or a type change it is prepared afresh")
    func cachedStatementColumns() async throws {
        let config = PostgresConnection.Configuration(url: try TestEnvironment.systemGraphURL, preparedStatements: .cached)
        try await PostgresConnection.withConnection(configuration: config, logger: logger) { connection in
            try await connection.execute(simple: "CREATE TEMP TABLE shapes (a int, b text); INSERT INTO shapes VALUES (1, 'one')", logger: logger)
            let select: PostgresQuery = "SELECT * FROM shapes WHERE a = \(1)"
            // The server refuses a cached plan whose result changed once (0A000); the next call prepares afresh.
            func selectOnceRefused() async throws -> PostgresRow {
                do {
                    _ = try await connection.query(select, logger: logger)
                    Issue.record("expected the changed statement to be refused once")
                } catch let error as KTDBError where error.sqlState == "0A000" {}
                return try #require(try await connection.query(select, logger: logger).first)
            }
            var row = try #require(try await connection.query(select, logger: logger).first)
            #expect(try row.decode("b", as: String.self) == "one")
            try await connection.execute(simple: "ALTER TABLE shapes RENAME COLUMN b TO c", logger: logger)
            row = try await selectOnceRefused()
            #expect(try row.decode("c", as: String.self) == "one")
            #expect(throws: KTDBError.self) { try row.decode("b", as: String.self) }
            try await connection.execute(simple: "ALTER TABLE shapes ALTER COLUMN c TYPE int USING 7", logger: logger)
            row = try await selectOnceRefused()
            #expect(try row.decode("c", as: Int.self) == 7)
        }
    }

    @Test("a server error carries its SQLSTATE and the connection stays usable")
    func serverError() async throws {
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(try TestEnvironment.systemGraphURL), logger: logger) { c in
            do {
                try await c.query("SELECT * FROM no_such_table_here", logger: logger)
                Issue.record("expected an error")
            } catch let error as KTDBError {
                #expect(error.code == .server)
                #expect(error.sqlState == "42P01")
            }
            #expect(try await c.query("SELECT \(41) + 1 AS n", logger: logger).first?.decode("n", as: Int.self) == 42)
        }
    }

    @Test("libpq calls never block the cooperative pool: a ticker keeps running during 8 concurrent pg_sleep calls")
    func nonBlocking() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 8, maxOverflow: 0) { pool in
            // Open all 8 connections first, so the measurement covers only pg_sleep.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { try await pool.withConnection(logger: logger) { _ = try await $0.query("SELECT 1", logger: logger) } } }
                try await group.waitForAll()
            }
            let sleeping = Counter()
            let finished = Counter()
            var ticksWhileAllSleep = 0
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await pool.withConnection(logger: logger) { c in
                            sleeping.increment()
                            try await c.query("SELECT pg_sleep(2)", logger: logger)
                            finished.increment()
                        }
                    }
                }
                // The cooperative pool has as many threads as cores (2 here). If the 8 sleeps
                // blocked them, this loop could not run until the first sleep ended.
                while sleeping.value < 8 { await Task.yield() }
                while finished.value == 0 {
                    ticksWhileAllSleep += 1
                    try await Task.sleep(for: .milliseconds(5))
                }
                try await group.waitForAll()
            }
            // Up to ~400 ticks fit in 2 s; a blocked pool allows none (or one, before it blocks).
            // Other tests share the two cooperative threads, so the bar is low on purpose.
            #expect(ticksWhileAllSleep >= 3)
        }
    }

    /// Whether the backend `pid` runs a `pg_sleep`, as `observer` sees it in `pg_stat_activity`.
    static func sleeping(pid: Int, seenBy observer: PostgresConnection, logger: Logger) async throws -> Bool {
        try await observer.query(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid) AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
            logger: logger
        ).first?.decode(0, as: Int.self) == 1
    }

    @Test("cancelling a task returns it at once with `cancelled`, cancels its statement on the server, and retires the connection")
    func cancellation() async throws {
        let url = try TestEnvironment.systemGraphURL
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { c in
            let task = Task { try await c.query("SELECT pg_sleep(30)", logger: logger) }
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { observer in
                func sleeping() async throws -> Bool { try await Self.sleeping(pid: Int(c.backendPID), seenBy: observer, logger: logger) }
                // Cancel once the server runs the statement.
                while try await !sleeping() { try await Task.sleep(for: .milliseconds(20)) }
                task.cancel()
                do {
                    _ = try await task.value
                    Issue.record("expected a cancellation error")
                } catch let error as KTDBError {
                    #expect(error.code == .cancelled)
                }
                // The server stops the statement (one cancel request was sent).
                let stopped = try await TestEnvironment.waitUntil(.seconds(5)) { try await !sleeping() }
                #expect(stopped != nil)
            }
            // A cancel request may land late, so the connection serves no one again.
            #expect(!c.isIdleOutsideTransaction)
            await #expect(throws: KTDBError.self) { try await c.query("SELECT 1 AS one", logger: logger) }
        }
    }

    @Test(
        "with cancel requests off (behind a transaction pooler), a cancelled task returns with `cancelled`, no cancel request reaches the server, and close() does not wait for the statement"
    )
    func cancellationWithoutCancelRequest() async throws {
        let url = try TestEnvironment.systemGraphURL
        var configuration = TestEnvironment.connectionConfiguration(url)
        configuration.sendsCancelRequests = false
        let c = try await PostgresConnection.connect(configuration: configuration, logger: logger)
        let task = Task { try await c.query("SELECT pg_sleep(30)", logger: logger) }
        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { observer in
            func sleeping() async throws -> Bool { try await Self.sleeping(pid: Int(c.backendPID), seenBy: observer, logger: logger) }
            while try await !sleeping() { try await Task.sleep(for: .milliseconds(20)) }
            task.cancel()
            await #expect { _ = try await task.value } throws: { ($0 as? KTDBError)?.code == .cancelled }
            #expect(!c.isIdleOutsideTransaction)
            await c.close()
            // Closed while the server still runs the statement: no cancel request stopped it,
            // and closing did not wait for it.
            #expect(try await sleeping())
            await #expect(throws: KTDBError.self) { try await c.query("SELECT 1 AS one", logger: logger) }
            try await observer.query("SELECT pg_terminate_backend(\(c.backendPID))", logger: logger)
        }
    }
}

/// A counter shared between tasks.
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    func increment() { storage.add(1, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}
