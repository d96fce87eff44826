// KT benchmarks: each figure is a ratio to a reference measured against the same server in the
// same run, so the numbers compare across machines.
//
// Usage: kt-benchmarks <postgres-url> [reads-per-client]   (scripts/bench starts a cluster and passes it)
//        KT_BENCH_QDRANT_URL=<url> adds the Qdrant client benchmark (2);
//        with KT_BENCH_WRITE_URL=<url> too, the provisioning benchmark (3) and KTGraph (4);
//        KT_BENCH_WRITE_DATA=<data dir of the write-db cluster> adds the p99 figure with that
//        cluster at the lowest CPU priority (root only); with KT_BENCH_GRAPH_DATA=<data dir of
//        the graph-db cluster> too, the p99 figure with the write side and the read side on
//        separate CPUs (taskset).
//        KT_BENCH_ONLY=pool,qdrant,graph,provision,graphs,operate runs only the sections named
//        (sync: graph's upsert and sync figures without its reads; migrate-all and sync-many:
//        one half of operate each).
//        KT_BENCH_CLIENTS=n, KT_BENCH_EXECUTOR=0/1, KT_BENCH_NO_REFERENCE=1 and KT_BENCH_NO_P99=1
//        narrow the point-read runs of sections 1 and 4 (for profiling); KT_BENCH_ROUNDS=n sets
//        the paired rounds of section 4 (default 5).
//
// Both sides run the same number of reads per client. pgbench runs with `-t`, not `-T`: its
// timer is a SIGALRM, which a child of a Swift process may inherit blocked.
//
// 1. Point reads by primary key through the pool, concurrency 1 and 8, against
//    `pgbench -S -M prepared` at the same concurrency (target >= 0.8x).
// 2. Qdrant upsert (1 point) and query (limit 10) latency against curl over one kept-alive
//    connection (target <= 1.2x).
// 3. Provisioning one graph end to end, p50/p95 over 20 graphs, and re-migrating them all.
// 4. KTGraph: batch upserts and sync vs COPY (>= 0.5x), ReadGraphEngine point reads vs
//    pgbench -S (>= 0.8x), read p99 under 16 writers vs idle (<= 1.5x).
// 5. 1,000 graphs (KT_BENCH_GRAPHS) on one pair through a kt-server child process (the one built
//    next to this binary, or KT_BENCH_SERVER): connections per database, RSS, list p50/p99.
// 6. Operating them: migrate-all with nothing to do (< 1 s) and with one new migration per
//    schema (< 15 s); sync of 100 graphs x 100 rows vs 1 graph x 10,000 rows (<= 2x).
// 7. Moving a graph of 100,000 nodes and 200,000 facts (KT_BENCH_MOVE_NODES, _FACTS) to the pair
//    KT_BENCH_TARGET_GRAPH_URL / KT_BENCH_TARGET_WRITE_URL, against pg_dump | psql of the same
//    schemas (>= 0.5x), and the write pause (<= 1 s).
import Foundation
import KTConfig
import KTDB
import Logging

let arguments = CommandLine.arguments
// `kt-benchmarks --write-load <write-url> <schema> <tasks>`: the worker side of the p99
// benchmark in a process of its own (as workers run apart from the API); it writes until its
// standard input closes.
if arguments.count == 5, arguments[1] == "--write-load" {
    try await GraphBenchmark.writeLoad(writeURL: try DatabaseURL(parsing: arguments[2]), schema: try SchemaName(arguments[3]), tasks: Int(arguments[4]) ?? 16)
    exit(0)
}
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

/// A cheap pseudo-random generator (xorshift64*): `Int.random` with the system generator costs a
/// `getrandom` system call per number, which would be measured as client overhead.
struct FastRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2685821657736338717
    }
}

/// CPU seconds (user + system) used so far by this process or by its waited-for children.
func cpuSeconds(children: Bool) -> Double {
    var usage = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs a program to its end; returns its exit status and standard output (standard error is dropped).
func runCapturing(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process(), output = Pipe()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs pgbench and returns its transactions per second (excluding connection time).
func pgbench(clients: Int) throws -> Double {
    let bin = ProcessInfo.processInfo.environment["KT_PG_BIN"].map { "\($0)/pgbench" } ?? "/usr/bin/pgbench"
    let text = try runCapturing(bin, ["-n", "-S", "-M", "prepared", "-c", "\(clients)", "-j", "\(clients)", "-t", "\(readsPerClient)", url.urlString(includingPassword: true)]).output
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
        let value = Double(line.dropFirst(6).prefix { $0 == "." || $0.isNumber })
    else { throw KTDBError(code: .invalidArgument, message: "could not read pgbench output: \(text)") }
    return value
}

/// The point-read runs of sections 1 and 4, narrowed for profiling by `KT_BENCH_CLIENTS`,
/// `KT_BENCH_EXECUTOR` and `KT_BENCH_NO_REFERENCE`.
enum PointReadRuns {
    static let environment = ProcessInfo.processInfo.environment
    /// Concurrency levels: 1 and 8, or `KT_BENCH_CLIENTS`.
    static let clientCounts = environment["KT_BENCH_CLIENTS"].map { [Int($0) ?? 1] } ?? [1, 8]
    /// From plain tasks and from the pool's executor, or only `KT_BENCH_EXECUTOR` (0 or 1).
    static let executorModes = environment["KT_BENCH_EXECUTOR"].map { [$0 == "1"] } ?? [false, true]
    /// `pgbench -S` tps at `clients`; 1 with `KT_BENCH_NO_REFERENCE=1` (the client alone, for
    /// profiling; ratios are then meaningless).
    static func reference(clients: Int) throws -> Double {
        environment["KT_BENCH_NO_REFERENCE"] == "1" ? 1 : try pgbench(clients: clients)
    }
}

/// Point reads of pgbench_accounts through the pool, `clients` tasks in parallel; returns reads/s.
func poolReads(clients: Int, onPoolExecutor: Bool) async throws -> Double {
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
                var random = FastRandom(seed: UInt64.random(in: 1...UInt64.max))
                for _ in 0..<readsPerClient {
                    let aid = Int.random(in: 1...accounts, using: &random)
                    _ = try await pool.withConnection(logger: logger) { try await $0.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)", logger: logger) }
                }
            }
        }
        try await group.waitForAll()
    }
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<clients {
            group.addTask {
                @Sendable func reads() async throws -> Int {
                    var count = 0
                    var random = FastRandom(seed: UInt64.random(in: 1...UInt64.max))
                    while count < readsPerClient {
                        let aid = Int.random(in: 1...accounts, using: &random)
                        let row = try await pool.withConnection(logger: logger) {
                            try await $0.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)", logger: logger).first
                        }
                        _ = try row?.decode(0, as: Int.self)
                        count += 1
                    }
                    return count
                }
                return onPoolExecutor ? try await withTaskExecutorPreference(pool.executor) { try await reads() } : try await reads()
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = ContinuousClock.now - start
    await pool.shutdown()
    return Double(total) / elapsed.seconds
}

let sections = ProcessInfo.processInfo.environment["KT_BENCH_ONLY"].map { Set($0.split(separator: ",").map(String.init)) }
func runs(_ section: String) -> Bool { sections?.contains(section) ?? true }

print("KT benchmarks (\(readsPerClient) reads per client, same server, same run)")
if runs("pool") {
    print("point reads by primary key through the pool vs pgbench -S -M prepared (target >= 0.80x)")
    for clients in PointReadRuns.clientCounts {
        let childCPU = cpuSeconds(children: true)
        let reference = try PointReadRuns.reference(clients: clients)
        let pgbenchCPU = (cpuSeconds(children: true) - childCPU) / Double(clients * readsPerClient) * 1e6
        for onPoolExecutor in PointReadRuns.executorModes {
            let ownCPU = cpuSeconds(children: false)
            let ours = try await poolReads(clients: clients, onPoolExecutor: onPoolExecutor)
            let ourCPU = (cpuSeconds(children: false) - ownCPU) / Double(clients * readsPerClient * 2) * 1e6  // the warm-up did as many reads again
            print(
                String(
                    format: "  c=%d  %-22@ %8.0f reads/s   pgbench %8.0f tps   ratio %.2fx   (client CPU per read: %.1f us, pgbench %.1f us)",
                    clients, onPoolExecutor ? "pool, on pool executor" : "pool", ours, reference, ours / reference, ourCPU, pgbenchCPU))
        }
    }
}

if runs("qdrant"), let qdrantURL = ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_URL"] {
    try await QdrantBenchmark.run(url: qdrantURL, requests: Int(ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_REQUESTS"] ?? "") ?? 300, logger: logger)
}

if runs("graph") || runs("sync"), let write = ProcessInfo.processInfo.environment["KT_BENCH_WRITE_URL"] {
    print("KTGraph: engines and sync")
    try await GraphBenchmark.run(
        graphURL: url, writeURL: try DatabaseURL(parsing: write),
        graphDataDirectory: ProcessInfo.processInfo.environment["KT_BENCH_GRAPH_DATA"],
        writeDataDirectory: ProcessInfo.processInfo.environment["KT_BENCH_WRITE_DATA"], readsPerClient: min(readsPerClient, 5000),
        reads: runs("graph"), logger: logger)
}

if runs("graphs"), let qdrantURL = ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_URL"], let write = ProcessInfo.processInfo.environment["KT_BENCH_WRITE_URL"] {
    let server =
        ProcessInfo.processInfo.environment["KT_BENCH_SERVER"]
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kt-server").path
    try await ManyGraphsBenchmark.run(
        graphURL: url, writeURL: try DatabaseURL(parsing: write), qdrantURL: qdrantURL,
        count: Int(ProcessInfo.processInfo.environment["KT_BENCH_GRAPHS"] ?? "") ?? 1000, serverPath: server, logger: logger)
}

if runs("operate") || runs("migrate-all") || runs("sync-many"), let qdrantURL = ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_URL"],
    let write = ProcessInfo.processInfo.environment["KT_BENCH_WRITE_URL"]
{
    try await OperationsBenchmark.run(
        graphURL: url, writeURL: try DatabaseURL(parsing: write), qdrantURL: qdrantURL,
        count: Int(ProcessInfo.processInfo.environment["KT_BENCH_GRAPHS"] ?? "") ?? 1000,
        migrate: runs("operate") || runs("migrate-all"), sync: runs("operate") || runs("sync-many"), logger: logger)
}

if runs("move"), let qdrantURL = ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_URL"], let write = ProcessInfo.processInfo.environment["KT_BENCH_WRITE_URL"],
    let targetGraph = ProcessInfo.processInfo.environment["KT_BENCH_TARGET_GRAPH_URL"], let targetWrite = ProcessInfo.processInfo.environment["KT_BENCH_TARGET_WRITE_URL"]
{
    let environment = ProcessInfo.processInfo.environment
    try await MoveBenchmark.run(
        graphURL: url, writeURL: try DatabaseURL(parsing: write), targetGraphURL: try DatabaseURL(parsing: targetGraph),
        targetWriteURL: try DatabaseURL(parsing: targetWrite), qdrantURL: qdrantURL, targetQdrantURL: environment["KT_BENCH_TARGET_QDRANT_URL"],
        nodes: Int(environment["KT_BENCH_MOVE_NODES"] ?? "") ?? 100_000, facts: Int(environment["KT_BENCH_MOVE_FACTS"] ?? "") ?? 200_000,
        points: Int(environment["KT_BENCH_MOVE_POINTS"] ?? "") ?? 10_000, logger: logger)
}

if runs("provision"), let qdrantURL = ProcessInfo.processInfo.environment["KT_BENCH_QDRANT_URL"], let write = ProcessInfo.processInfo.environment["KT_BENCH_WRITE_URL"] {
    try await ProvisioningBenchmark.run(graphURL: url, writeURL: try DatabaseURL(parsing: write), qdrantURL: qdrantURL, count: 20, logger: logger)
}
