import Foundation
import KTConfig
import KTDB
import Synchronization
import Testing

/// Cancelling a task while its connection opens.
extension ConnectionTests {
    @Test(
        "a task cancelled while its connection opens through a silent network returns with `cancelled` while the network is still silent; its pool slot is free again, and the connection that opens late is closed"
    )
    func cancelWhileOpening() async throws {
        let url = try TestEnvironment.systemGraphURL
        let proxy = try TCPProxy(targetPort: url.port ?? 5432)
        defer { proxy.stop() }
        var proxied = url
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        var configuration = TestEnvironment.poolConfiguration(
            proxied, size: 1, maxOverflow: 0, timeout: TestEnvironment.checkoutTimeout, recycle: .seconds(600), prepared: .cached, prePingAfterIdle: .seconds(10))
        configuration.connection.connectTimeout = .seconds(300)
        let application = TestEnvironment.uniqueName("opening")
        configuration.connection.applicationName = application
        proxy.freeze()
        try await PostgresConnectionPool.withPool(configuration: configuration, backgroundLogger: logger) { pool in
            let task = Task { try await pool.withConnection(logger: logger) { try await $0.query("SELECT 1", logger: logger) } }
            // The start-up message is through to the proxy, which holds it.
            #expect(try await TestEnvironment.waitUntil(.seconds(30)) { pool.statistics.opening == 1 && proxy.connections == 1 } != nil)
            try await Task.sleep(for: .milliseconds(300))
            // Should the cancellation not be honoured, the network comes back after a while and
            // the connection opens: the task would then succeed.
            let watchdog = Task {
                do { try await Task.sleep(for: .seconds(60)) } catch { return false }
                proxy.thaw()
                return true
            }
            task.cancel()
            do {
                _ = try await task.value
                Issue.record("the connection opened although its task was cancelled")
            } catch let error as KTDBError {
                #expect(error.code == .cancelled, "\(error)")
            }
            watchdog.cancel()
            #expect(await watchdog.value == false, "the task ended only once the network came back")
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
        let url = try TestEnvironment.systemGraphURL
        let proxy = try TCPProxy(targetPort: url.port ?? 5432)
        defer { proxy.stop() }
        var proxied = url
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        var configuration = TestEnvironment.poolConfiguration(
            proxied, size: 1, maxOverflow: 0, timeout: TestEnvironment.checkoutTimeout, recycle: .seconds(600), prepared: .cached, prePingAfterIdle: .seconds(10))
        configuration.connection.connectTimeout = .seconds(300)
        proxy.freeze()
        try await PostgresConnectionPool.withPool(configuration: configuration, backgroundLogger: logger) { pool in
            let task = Task { try await pool.withConnection(logger: logger) { _ in } }
            #expect(try await TestEnvironment.waitUntil(.seconds(30)) { pool.statistics.opening == 1 && proxy.connections == 1 } != nil)
            task.cancel()
            #expect(await task.result.isFailure)
            let order = Order()
            let shutdown = Task {
                await pool.shutdown()
                order.append("shut down")
            }
            try await Task.sleep(for: .milliseconds(500))
            order.append("network back")
            proxy.thaw()
            await shutdown.value
            #expect(order.entries == ["network back", "shut down"])
            #expect(try await TestEnvironment.waitUntil(.seconds(60)) { proxy.connections == 0 } != nil)
        }
    }
}

/// What happened, in order, from any task.
private final class Order: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var entries: [String] { lines.withLock { $0 } }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
