import Foundation
import KTConfig
import KTDB
import Testing

/// Cancelling a task while its connection opens.
extension ConnectionTests {
    /// Runs `body` with a one-connection pool on the system graph-db through `proxy`, frozen,
    /// and a connect timeout longer than any wait of the tests.
    func withSilentPool(
        _ proxy: TCPProxy, applicationName: String = "kt-test", _ body: (PostgresConnectionPool) async throws -> Void
    ) async throws {
        var configuration = TestEnvironment.poolConfiguration(
            proxy.route(try TestEnvironment.systemGraphURL), size: 1, maxOverflow: 0, timeout: TestEnvironment.checkoutTimeout, recycle: .seconds(600),
            prepared: .cached, prePingAfterIdle: .seconds(10))
        configuration.connection.connectTimeout = .seconds(300)
        configuration.connection.applicationName = applicationName
        proxy.freeze()
        try await PostgresConnectionPool.withPool(configuration: configuration, backgroundLogger: logger) { pool in
            try await body(pool)
        }
    }

    @Test(
        "a task cancelled while its connection opens through a silent network returns with `cancelled` while the network is still silent; its pool slot is free again, and the connection that opens late is closed"
    )
    func cancelWhileOpening() async throws {
        let url = try TestEnvironment.systemGraphURL
        let proxy = try TCPProxy(before: url)
        defer { proxy.stop() }
        let application = TestEnvironment.uniqueName("opening")
        try await withSilentPool(proxy, applicationName: application) { pool in
            let task = Task { try await pool.withConnection(logger: logger) { try await $0.query("SELECT 1", logger: logger) } }
            // The start-up message is through to the proxy, which holds it.
            #expect(try await TestEnvironment.waitUntil(.seconds(30)) { pool.statistics.opening == 1 && proxy.held == 1 } != nil)
            // Should the cancellation not be honoured, the connection opens once the network is back.
            let watchdog = Watchdog { proxy.thaw() }
            task.cancel()
            await #expect { try await task.value } throws: { ($0 as? KTDBError)?.code == .cancelled }
            #expect(await watchdog.disarm() == false, "the task ended only once the network came back")
            #expect(pool.statistics.opening == 0 && pool.statistics.inUse == 0)
            proxy.thaw()
            // The late connection is closed once it opens: nothing of it stays through the proxy
            // or on the server; the pool's one slot serves the next statement.
            #expect(try await TestEnvironment.waitUntil(.seconds(60)) { proxy.connections == 0 } != nil)
            let backends = try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { watcher in
                try await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = \(application)", logger: logger).first!.decode(0, as: Int.self)
            }
            #expect(backends == 0)
            #expect(try await pool.withConnection(logger: logger) { try await $0.query("SELECT 2", logger: logger).first!.decode(0, as: Int.self) } == 2)
        }
    }

    @Test(
        "a pool's shutdown returns only once the connection it was opening has ended, also one given up by its cancelled task (a process that exits while libpq still connects can crash in OpenSSL)"
    )
    func shutdownWaitsForOpening() async throws {
        let proxy = try TCPProxy(before: try TestEnvironment.systemGraphURL)
        defer { proxy.stop() }
        try await withSilentPool(proxy) { pool in
            let task = Task { try await pool.withConnection(logger: logger) { _ in } }
            #expect(try await TestEnvironment.waitUntil(.seconds(30)) { pool.statistics.opening == 1 && proxy.held == 1 } != nil)
            task.cancel()
            await #expect(throws: KTDBError.self) { try await task.value }
            // The shutdown tells whether the network was still silent when it returned.
            let shutdown = Task {
                await pool.shutdown()
                return proxy.isFrozen
            }
            try await Task.sleep(for: .milliseconds(500))
            proxy.thaw()
            #expect(await shutdown.value == false, "the shutdown returned while the connect still ran")
            #expect(try await TestEnvironment.waitUntil(.seconds(60)) { proxy.connections == 0 } != nil)
        }
    }
}
