import Foundation
import KTConfig
import KTDB
import Logging
import ServiceLifecycle
import Testing

@Suite("Connection pool (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct PoolTests {
    let logger = TestEnvironment.logger

    static func pid(_ c: PostgresConnection, _ logger: Logger) async throws -> Int {
        try await c.query("SELECT pg_backend_pid() AS pid", logger: logger).first!.decode("pid", as: Int.self)
    }

    @Test("checkout timeout gives a clear poolTimeout error, not a hang")
    func checkoutTimeout() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0, timeout: .milliseconds(300)) { pool in
            try await pool.withConnection(logger: logger) { _ in
                do {
                    try await pool.withConnection(logger: logger) { _ in }
                    Issue.record("expected a timeout")
                } catch let error as KTDBError {
                    #expect(error.code == .poolTimeout)
                    #expect(error.debugDescription.contains("size 1"))
                }
            }
            #expect(pool.statistics.waiting == 0)
            // The connection is free again: a checkout now succeeds.
            try await pool.withConnection(logger: logger) { _ = try await $0.query("SELECT 1", logger: logger) }
        }
    }

    @Test("a waiter whose task is cancelled ends at once with `cancelled`, not a pool timeout; a task cancelled before it waits never queues (issue 17, item 4)")
    func cancelledWaiter() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0, timeout: .seconds(30)) { pool in
            try await pool.withConnection(logger: logger) { _ in
                let started = ContinuousClock.now
                let waiting = Task { try await pool.withConnection(logger: logger) { _ in } }
                try await Task.sleep(for: .milliseconds(100))
                waiting.cancel()
                do {
                    try await waiting.value
                    Issue.record("the waiter got a connection that is in use")
                } catch let error as KTDBError {
                    #expect(error.code == .cancelled)
                }
                #expect(ContinuousClock.now - started < .seconds(5))
                // Cancelled before it asks: it never waits.
                let early = Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    try await pool.withConnection(logger: logger) { _ in }
                }
                await #expect(throws: KTDBError.self) { try await early.value }
                #expect(pool.statistics.waiting == 0)
            }
        }
    }

    @Test("size and overflow: overflow connections close on return, size connections stay idle")
    func overflow() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 2, maxOverflow: 2) { pool in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await pool.withConnection(logger: logger) { _ = try await $0.query("SELECT pg_sleep(0.3)", logger: logger) } }
                }
                try await group.waitForAll()
            }
            let stats = pool.statistics
            #expect(stats.inUse == 0)
            #expect(stats.idle == 2)
        }
    }

    @Test("waiters are served when a connection comes back")
    func waiters() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0) { pool in
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<6 {
                    group.addTask { try await pool.withConnection(logger: logger) { try await $0.query("SELECT \(i) AS n", logger: logger).first!.decode("n", as: Int.self) } }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.sorted() == [0, 1, 2, 3, 4, 5])
        }
    }

    @Test("recycle: a connection older than the recycle age is replaced")
    func recycle() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0, recycle: .seconds(3)) { pool in
            let first = try await pool.withConnection(logger: logger) { try await Self.pid($0, logger) }
            let again = try await pool.withConnection(logger: logger) { try await Self.pid($0, logger) }
            #expect(first == again)
            try await Task.sleep(for: .milliseconds(3200))
            let later = try await pool.withConnection(logger: logger) { try await Self.pid($0, logger) }
            #expect(later != first)
        }
    }

    @Test("pre-ping replaces a connection the server killed", arguments: [Duration.zero, .seconds(60)])
    func prePing(afterIdle: Duration) async throws {
        let url = try TestEnvironment.systemGraphURL
        try await TestEnvironment.withPool(url, size: 1, maxOverflow: 0, prePingAfterIdle: afterIdle) { pool in
            let (victim, victimConnection) = try await pool.withConnection(logger: logger) { (try await Self.pid($0, logger), $0) }
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) { admin in
                try await admin.query("SELECT pg_terminate_backend(\(Int32(victim)))", logger: logger)
                // Wait until the backend is gone on the server side (its socket is then closed).
                while try await admin.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(Int32(victim))", logger: logger)
                    .first?.decode(0, as: Int.self) != 0
                {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            if afterIdle == .zero {
                // Every checkout pings: the very next one replaces the dead connection.
                let replacement = try await pool.withConnection(logger: logger) { try await Self.pid($0, logger) }
                #expect(replacement != victim)
                return
            }
            // No round trip with a 60 s threshold: the event loop reads the idle connection's
            // closed socket and marks it dead, and the next checkout replaces it. Until the loop
            // has done so, the pool may still hand out the victim; it goes back untouched (no
            // statement ever fails) and the checkout is tried again.
            var replacement: Int?
            for _ in 0..<500 where replacement == nil {
                replacement = try await pool.withConnection(logger: logger) { connection in
                    connection === victimConnection ? nil : try await Self.pid(connection, logger)
                }
                if replacement == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(replacement != nil && replacement != victim)
        }
    }

    @Test("a connection returned inside a transaction is discarded, not reused")
    func dirtyReturn() async throws {
        try await TestEnvironment.withPool(try TestEnvironment.systemGraphURL, size: 1, maxOverflow: 0) { pool in
            let first = try await pool.withConnection(logger: logger) { c in
                try await c.execute(simple: "BEGIN", logger: logger)
                return try await Self.pid(c, logger)
            }
            let second = try await pool.withConnection(logger: logger) { c in
                #expect(c.isIdleOutsideTransaction)
                return try await Self.pid(c, logger)
            }
            #expect(first != second)
        }
    }

    @Test("shutdown fails later checkouts with poolClosed; run() ends on graceful shutdown")
    func shutdown() async throws {
        let pool = TestEnvironment.makePool(try TestEnvironment.systemGraphURL)
        try await pool.withConnection(logger: logger) { _ = try await $0.query("SELECT 1", logger: logger) }
        let group = ServiceGroup(services: [pool], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        do {
            try await pool.withConnection(logger: logger) { _ in }
            Issue.record("expected poolClosed")
        } catch let error as KTDBError {
            #expect(error.code == .poolClosed)
        }
        #expect(pool.statistics.idle == 0)
    }
}
