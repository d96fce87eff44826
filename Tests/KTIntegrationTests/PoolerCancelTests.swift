import Foundation
import KTDB
import KTProvision
import Logging
import Testing

/// PgBouncer 1.18 (Debian bookworm's) exits with `FATAL … server_proto: server in bad state: 11`
/// when a server connection it holds back for a cancel request in flight (`SV_BEING_CANCELED`)
/// hears from its backend, for example because the backend was terminated (pgbouncer#815,
/// #822, fixed in 1.19 and 1.21). A CI run lost the rig's PgBouncer that way: every later
/// connection to it was refused. Through a transaction pooler the SDK therefore sends no cancel
/// request; it closes the connection instead.
///
/// The test uses a PgBouncer of its own (`KT_TEST_SCRATCH_PGBOUNCER_URL`), so that a crash
/// costs no other test its pooler.
@Suite("Cancellation through PgBouncer (real servers)", .enabled(if: TestEnvironment.isEnabled))
struct PoolerCancelTests {
    let logger = TestEnvironment.logger

    /// Whether the pooler still accepts a connection and answers a statement.
    func answers(_ url: DatabaseURL) async -> Bool {
        var configuration = TestEnvironment.connectionConfiguration(url, prepared: .disabled)
        configuration.connectTimeout = .seconds(3)
        return (try? await PostgresConnection.withConnection(configuration: configuration, logger: logger) { try await $0.query("SELECT 1", logger: logger).rows.count }) == 1
    }

    @Test(
        "statements cancelled through PgBouncer in transaction mode, each followed by the termination of the database's backends (as DROP DATABASE … FORCE or a restart does): the pooler stays up, each task ends done, `cancelled` or closed, and the pool goes on"
    )
    func cancelledStatementsKeepThePoolerUp() async throws {
        let bouncer = try TestEnvironment.url("KT_TEST_SCRATCH_PGBOUNCER_URL")
        let settings = PoolSettings(size: 1, maxOverflow: 0, timeout: .seconds(1), recycle: .seconds(1))
        #expect(!DatabaseEndpoint(role: .write, url: bouncer, sslMode: nil, pool: settings, throughPooler: true).oneOffConnection(application: "kt").sendsCancelRequests)
        #expect(DatabaseEndpoint(role: .write, url: bouncer, sslMode: nil, pool: settings, throughPooler: false).oneOffConnection(application: "kt").sendsCancelRequests)
        let upBefore = await answers(bouncer)
        #expect(upBefore, "the scratch PgBouncer is down before the test")
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { direct in
            var through = bouncer
            through.database = direct.database
            let endpoint = DatabaseEndpoint(
                role: .write, url: through, sslMode: nil,
                pool: PoolSettings(size: 2, maxOverflow: 0, timeout: .seconds(10), recycle: .seconds(600)), throughPooler: true)
            let configuration = PostgresConnectionPool.Configuration(connection: endpoint.oneOffConnection(application: "kt-test-cancel"), pool: endpoint.pool, label: "cancel")
            try await PostgresConnectionPool.withPool(configuration: configuration, backgroundLogger: logger) { pool in
                try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(direct), logger: logger) { admin in
                    var survived = true
                    for round in 0..<150 {
                        let statement = Task {
                            try await pool.withConnection(logger: logger) { try await $0.query("SELECT pg_sleep(0.02)", logger: logger) }
                        }
                        try await Task.sleep(for: .microseconds(Int.random(in: 0...30_000)))
                        statement.cancel()
                        // Done before the cancel, cancelled, or closed: PgBouncer may hand the
                        // statement a server connection whose backend the last round terminated
                        // before it noticed, and then closes the client (a CI run saw it twice
                        // in 150 rounds). Nothing else.
                        if case .failure(let error) = await statement.result {
                            #expect([.cancelled, .connectionClosed].contains((error as? KTDBError)?.code), "\(error)")
                        }
                        try await Task.sleep(for: .microseconds(Int.random(in: 0...4_000)))
                        try await admin.query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                            logger: logger)
                        if round % 10 == 9, !(await answers(through)) {
                            survived = false
                            break
                        }
                    }
                    let up = await answers(through)
                    #expect(survived && up, "PgBouncer stopped answering (its log names the FATAL)")
                }
                // The pool still serves statements (it replaced the connections the rounds closed).
                let value = try await pool.withConnection(logger: logger) { try await $0.query("SELECT 41 + 1", logger: logger).first?.decode(0, as: Int.self) }
                #expect(value == 42)
            }
        }
    }
}
