import Foundation
import KTConfig
import KTDB
import KTQdrant
import Logging

/// The servers `scripts/test-env start` launched, read from its environment variables.
///
/// Integration tests run only when `KT_TEST_INTEGRATION=1` (the README's test command sets it);
/// in CI they always run.
enum TestEnvironment {
    static let variables = ProcessInfo.processInfo.environment
    static let isEnabled = variables["KT_TEST_INTEGRATION"] == "1"

    static let logger: Logger = {
        var logger = Logger(label: "kt-integration-tests")
        logger.logLevel = variables["KT_TEST_LOG_DEBUG"] == "1" ? .debug : .info
        return logger
    }()

    static func url(_ name: String) throws -> DatabaseURL {
        guard let text = variables[name] else { throw KTDBError(code: .invalidArgument, message: "\(name) is not set; run scripts/test-env start") }
        return try DatabaseURL(parsing: text, key: name)
    }

    static var systemGraphURL: DatabaseURL { get throws { try url("KT_TEST_SYSTEM_GRAPH_URL") } }
    static var systemWriteURL: DatabaseURL { get throws { try url("KT_TEST_SYSTEM_WRITE_URL") } }
    static var externalGraphURL: DatabaseURL { get throws { try url("KT_TEST_EXTERNAL_GRAPH_URL") } }
    static var externalWriteURL: DatabaseURL { get throws { try url("KT_TEST_EXTERNAL_WRITE_URL") } }
    static var pgbouncerURL: DatabaseURL { get throws { try url("KT_TEST_PGBOUNCER_URL") } }

    /// Whether `url` names one of the rig's PgBouncers (then no cancel request is sent, as the
    /// SDK's endpoints behind a pooler do: PgBouncer 1.18 can die of one).
    static func isPooler(_ url: DatabaseURL) -> Bool {
        poolers.contains { $0.host == url.host && $0.port == url.port }
    }

    /// The rig's PgBouncers, read once.
    private static let poolers: [DatabaseURL] = ["KT_TEST_PGBOUNCER_URL", "KT_TEST_EXTERNAL_PGBOUNCER_URL", "KT_TEST_SCRATCH_PGBOUNCER_URL"].compactMap { try? url($0) }

    static func connectionConfiguration(_ url: DatabaseURL, prepared: PostgresConnection.PreparedStatementMode = .cached, application: String = "kt-test") -> PostgresConnection.Configuration {
        PostgresConnection.Configuration(url: url, applicationName: application, preparedStatements: prepared, sendsCancelRequests: !isPooler(url))
    }

    static func poolConfiguration(
        _ url: DatabaseURL, size: Int, maxOverflow: Int, timeout: Duration, recycle: Duration,
        prepared: PostgresConnection.PreparedStatementMode, prePingAfterIdle: Duration
    ) -> PostgresConnectionPool.Configuration {
        .init(
            connection: connectionConfiguration(url, prepared: prepared),
            pool: PoolSettings(size: size, maxOverflow: maxOverflow, timeout: timeout, recycle: recycle),
            prePingAfterIdle: prePingAfterIdle,
            label: "test")
    }

    /// The checkout timeout of the tests' pools: generous, since no test but the timeout ones is
    /// about it, and the full suite on two loaded cores can keep a short query waiting for seconds.
    static let checkoutTimeout = Duration.seconds(60)

    static func makePool(_ url: DatabaseURL) -> PostgresConnectionPool {
        PostgresConnectionPool(
            configuration: poolConfiguration(url, size: 4, maxOverflow: 4, timeout: checkoutTimeout, recycle: .seconds(600), prepared: .cached, prePingAfterIdle: .seconds(10)),
            backgroundLogger: logger)
    }

    /// Runs `body` with a pool that is shut down afterwards.
    static func withPool<T: Sendable>(
        _ url: DatabaseURL, size: Int = 4, maxOverflow: Int = 4, timeout: Duration = checkoutTimeout, recycle: Duration = .seconds(600),
        prepared: PostgresConnection.PreparedStatementMode = .cached, prePingAfterIdle: Duration = .seconds(10),
        _ body: (PostgresConnectionPool) async throws -> T
    ) async throws -> T {
        try await PostgresConnectionPool.withPool(
            configuration: poolConfiguration(url, size: size, maxOverflow: maxOverflow, timeout: timeout, recycle: recycle, prepared: prepared, prePingAfterIdle: prePingAfterIdle),
            backgroundLogger: logger, body)
    }

    /// Deletes the three Qdrant collections of each graph a test created: `global` slugs on the
    /// system Qdrant, `external` ones on the external pair's.
    static func dropCollections(global: [String] = [], external: [String] = []) async throws {
        for (variable, slugs) in [("KT_TEST_QDRANT_URL", global), ("KT_TEST_EXTERNAL_QDRANT_URL", external)] where !slugs.isEmpty {
            let client = try QdrantClient(configuration: .init(url: variables[variable] ?? ""), logger: logger)
            defer { client.close() }
            for slug in slugs {
                for name in QdrantCollections(graphSlug: slug).all { try await client.deleteCollection(name) }
            }
        }
    }

    /// The `set/version` rows of `schema`'s migration version table on `url`, in order.
    static func schemaVersions(schema: String, on url: DatabaseURL) async throws -> [String] {
        try await PostgresConnection.withConnection(configuration: connectionConfiguration(url), logger: logger) { connection in
            try await connection.query(
                "SELECT migration_set || '/' || version FROM \(TableName("kt_schema_migrations", in: schema == "public" ? .public : try SchemaName(schema))) ORDER BY migration_set, version",
                logger: logger
            ).rows.map { row throws(KTDBError) in try row.decode(0, as: String.self) }
        }
    }

    /// Runs blocking work (a pipe read, a wait for a child process) on a thread of its own.
    /// Never on Swift's cooperative pool: on this 2-core machine it has two threads, and two
    /// tests blocked in a child's pipe would stall every other test of the process.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    /// Runs a program to its end with its output in a temporary file (no pipe can fill up);
    /// returns its exit status and output.
    static func runProcess(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
        directory: URL? = nil
    ) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("kt-process-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        await onThread { process.waitUntilExit() }
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    /// Whether the schema `name` exists in the database of `url`.
    static func schemaExists(_ name: String, on url: DatabaseURL) async throws -> Bool {
        try await PostgresConnection.withConnection(configuration: connectionConfiguration(url), logger: logger) { connection in
            try await Migrator.schemaExists(try SchemaName(name), on: connection, logger: logger)
        }
    }

    /// What ``schemaVersions(schema:on:)`` returns for a schema at the head of `sets`.
    static func expectedVersions(_ sets: [MigrationSet]) -> [String] {
        sets.flatMap { set in set.migrations.map { "\(set.name)/\($0.version)" } }.sorted()
    }

    /// Polls `condition` every 50 ms for at most `limit`; returns the time it took, or `nil`.
    static func waitUntil(_ limit: Duration, _ condition: () async throws -> Bool) async throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if try await condition() { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// A unique lower-case name for a test's schema, table or database.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Creates a fresh database on the server of `url`, runs `body` with its URL, and drops it.
    static func withFreshDatabase<T: Sendable>(on url: DatabaseURL, _ body: (DatabaseURL) async throws -> T) async throws -> T {
        let name = uniqueName("kt_t")
        try await PostgresConnection.withConnection(configuration: connectionConfiguration(url), logger: logger) {
            try await $0.execute(simple: "CREATE DATABASE \(name)", logger: logger)
        }
        var fresh = url
        fresh.database = name
        do {
            let value = try await body(fresh)
            try await dropDatabase(name, on: url)
            return value
        } catch {
            try? await dropDatabase(name, on: url)
            throw error
        }
    }

    /// Drops a test database. `WITH (FORCE)` ends the sessions the test left behind, but the
    /// test role is not a superuser and may not end an autovacuum worker that happens to be
    /// in the database (SQLSTATE 42501); a plain `DROP DATABASE` asks autovacuum to leave and
    /// waits for it. Either can also meet a session that is still closing (55006), so the
    /// drop is tried again for a few seconds before the error is reported.
    private static func dropDatabase(_ name: String, on url: DatabaseURL) async throws {
        try await PostgresConnection.withConnection(configuration: connectionConfiguration(url), logger: logger) { connection in
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try await connection.execute(simple: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)", logger: logger)
                    return
                } catch let error as KTDBError where error.sqlState == "42501" || error.sqlState == "55006" {
                    if (try? await connection.execute(simple: "DROP DATABASE IF EXISTS \(name)", logger: logger)) != nil { return }
                    if attempt == 20 { throw error }
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
        }
    }
}
