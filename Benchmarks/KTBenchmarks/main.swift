// KT benchmarks: each figure is a ratio to a reference measured against the same server in the
// same run, so the numbers compare across machines.
//
// Usage: kt-benchmarks <postgres-url> [reads-per-client]   (scripts/bench starts a cluster and passes it)
//
// Both sides run the same number of reads per client. pgbench runs with `-t`, not `-T`: its
// timer is a SIGALRM, which a child of a Swift process may inherit blocked.
//
// 1. Point reads by primary key through the pool, concurrency 1 and 8, against
//    `pgbench -S -M prepared` at the same concurrency (target >= 0.8x).
import Foundation
import KTConfig
import KTDB
import Logging

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: kt-benchmarks <postgres-url> [reads-per-client]\n".utf8))
    exit(2)
}
let url = try DatabaseURL(parsing: arguments[1])
let readsPerClient = arguments.count > 2 ? Int(arguments[2]) ?? 20000 : 20000
let logger: Logger = {
    var logger = Logger(label: "kt-benchmarks")
    logger.logLevel = .warning
    return logger
}()

/// CPU seconds (user + system) used so far by this process or by its waited-for children.
func cpuSeconds(children: Bool) -> Double {
    var usage = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs pgbench and returns its transactions per second (excluding connection time).
func pgbench(clients: Int) throws -> Double {
    let process = Process()
    let bin = ProcessInfo.processInfo.environment["KT_PG_BIN"].map { "\($0)/pgbench" } ?? "/usr/bin/pgbench"
    process.executableURL = URL(fileURLWithPath: bin)
    process.arguments = ["-n", "-S", "-M", "prepared", "-c", "\(clients)", "-j", "\(clients)", "-t", "\(readsPerClient)", url.urlString(includingPassword: true)]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
        let value = Double(line.dropFirst(6).prefix { $0 == "." || $0.isNumber })
    else { throw KTDBError(code: .invalidArgument, message: "could not read pgbench output: \(text)") }
    return value
}

/// Point reads of pgbench_accounts through the pool, `clients` tasks in parallel; returns reads/s.
func poolReads(clients: Int) async throws -> Double {
    let pool = PostgresConnectionPool(
        configuration: .init(
            connection: .init(url: url, applicationName: "kt-bench"),
            pool: PoolSettings(size: clients, maxOverflow: 0, timeout: .seconds(30), recycle: .seconds(3600)),
            label: "bench"),
        backgroundLogger: logger)
    let accounts = try await pool.withConnection(logger: logger) {
        try await $0.query("SELECT count(*) FROM pgbench_accounts", logger: logger).first!.decode(0, as: Int.self)
    }
    // Warm up: open every connection and prepare the statement on each.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<clients {
            group.addTask {
                for _ in 0..<readsPerClient {
                    _ = try await pool.withConnection(logger: logger) { try await $0.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(Int.random(in: 1...accounts))", logger: logger) }
                }
            }
        }
        try await group.waitForAll()
    }
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<clients {
            group.addTask {
                var count = 0
                while count < readsPerClient {
                    let row = try await pool.withConnection(logger: logger) {
                        try await $0.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(Int.random(in: 1...accounts))", logger: logger).first
                    }
                    _ = try row?.decode(0, as: Int.self)
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = ContinuousClock.now - start
    await pool.shutdown()
    return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

print("KT benchmarks (\(readsPerClient) reads per client, same server, same run)")
print("point reads by primary key through the pool vs pgbench -S -M prepared (target >= 0.80x)")
for clients in [1, 8] {
    let childCPU = cpuSeconds(children: true)
    let reference = try pgbench(clients: clients)
    let pgbenchCPU = (cpuSeconds(children: true) - childCPU) / Double(clients * readsPerClient) * 1e6
    let ownCPU = cpuSeconds(children: false)
    let ours = try await poolReads(clients: clients)
    let ourCPU = (cpuSeconds(children: false) - ownCPU) / Double(clients * readsPerClient * 2) * 1e6  // warm-up did as many reads again
    print(String(format: "  c=%d  pool %9.0f reads/s   pgbench %9.0f tps   ratio %.2fx   (client CPU per read: pool %.1f us, pgbench %.1f us)",
                 clients, ours, reference, ours / reference, ourCPU, pgbenchCPU))
}
