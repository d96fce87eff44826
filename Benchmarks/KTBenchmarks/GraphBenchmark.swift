import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import Logging
import Synchronization

/// 4. KTGraph: batch upserts vs COPY into write-db, sync rows/s vs COPY into graph-db,
///    ReadGraphEngine point reads vs pgbench -S (c=1, c=8), and read p99 while 16 worker tasks
///    write, as a ratio to idle p99.
enum GraphBenchmark {
    /// Paired rounds of each figure (ours and the reference back to back): 5, or `KT_BENCH_ROUNDS`.
    static let rounds = max(1, PointReadRuns.environment["KT_BENCH_ROUNDS"].flatMap { Int($0) } ?? 5)

    /// Runs `body` while a child process (this executable, `--write-load`, started through
    /// `launcher`, e.g. `nice -n 19` or `taskset -c 1`) writes through `tasks` WorkerGraphEngine
    /// tasks; returns `body`'s value and the writes per second the child reported.
    static func withWriteLoadProcess<T>(
        launcher: [String], writeURL: DatabaseURL, schema: SchemaName, tasks: Int, _ body: () async throws -> T
    ) async throws -> (value: T, writesPerSecond: Double) {
        let process = Process(), input = Pipe(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: launcher[0])
        process.arguments = launcher.dropFirst() + [CommandLine.arguments[0], "--write-load", writeURL.urlString(includingPassword: true), schema.rawValue, "\(tasks)"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var stopped = false
        func stop() -> String {
            stopped = true
            try? input.fileHandleForWriting.close()
            let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return rest
        }
        defer { if !stopped { _ = stop() } }
        // The child prints a line once its writers have written, and its rate when it stops.
        guard String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("writing") else {
            _ = stop()
            throw KTGraphError(code: .invalidArgument, message: "the write-load process did not start writing")
        }
        try await Task.sleep(for: .milliseconds(300))
        let value = try await body()
        let rate = stop().split(separator: "\n").compactMap { Double($0) }.last
        guard let rate, process.terminationStatus == 0 else {
            throw KTGraphError(code: .invalidArgument, message: "the write-load process failed (status \(process.terminationStatus))")
        }
        return (value, rate)
    }

    /// The child side of ``withWriteLoadProcess(launcher:writeURL:schema:tasks:_:)``: prints
    /// `writing` once the first writes are done, and the writes per second when standard input closes.
    static func writeLoad(writeURL: DatabaseURL, schema: SchemaName, tasks: Int) async throws {
        let logger = Logger(label: "kt-bench-write-load")
        let pool = PostgresConnectionPool(
            configuration: .init(
                connection: .init(url: writeURL, applicationName: "kt-bench-load"), pool: PoolSettings(size: tasks, maxOverflow: 0, timeout: .seconds(60), recycle: .seconds(3600)),
                label: "bench-load"), backgroundLogger: logger)
        let worker = WorkerGraphEngine(writeSession: DatabaseSession(pool: pool, schema: schema), collections: QdrantCollections(graphSlug: "load"), logger: logger)
        let stop = Shared(false)
        // Stop when the parent closes standard input.
        Thread.detachNewThread {
            _ = FileHandle.standardInput.readDataToEndOfFile()
            stop.update { $0 = true }
        }
        let (_, rate) = try await whileWriting(worker, tasks: tasks, stop: stop) {
            FileHandle.standardOutput.write(Data("writing\n".utf8))
            while !stop.value { try await Task.sleep(for: .milliseconds(20)) }
        }
        FileHandle.standardOutput.write(Data("\(rate)\n".utf8))
        await pool.shutdown()
    }

    /// Runs `body` once every one of `tasks` tasks has upserted a node through `worker`, while
    /// they go on upserting until `stop` is set; sets it when `body` ends and waits for the
    /// writers. Returns `body`'s value and the writes per second.
    static func whileWriting<T: Sendable>(
        _ worker: WorkerGraphEngine, tasks: Int, stop: Shared<Bool> = Shared(false), _ body: () async throws -> T
    ) async throws -> (value: T, writesPerSecond: Double) {
        let started = Shared(0)
        let start = ContinuousClock.now
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<tasks {
                group.addTask {
                    var n = 0
                    while !stop.value {
                        try await worker.createNode(concept: "load \(writer) \(n % 500)", definition: "x")
                        if n == 0 { started.update { $0 += 1 } }
                        n += 1
                    }
                    return n
                }
            }
            defer { stop.update { $0 = true } }
            while started.value < tasks { try await Task.sleep(for: .milliseconds(5)) }
            let value = try await body()
            stop.update { $0 = true }
            let writes = try await group.reduce(0, +)
            return (value, Double(writes) / (ContinuousClock.now - start).seconds)
        }
    }

    static func psql(_ url: DatabaseURL, _ command: String) throws -> Double {
        let process = Process()
        let bin = ProcessInfo.processInfo.environment["KT_PG_BIN"].map { "\($0)/psql" } ?? "/usr/bin/psql"
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["-q", "-v", "ON_ERROR_STOP=1", "-c", command, url.urlString(includingPassword: true)]
        process.standardOutput = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw KTGraphError(code: .invalidArgument, message: "psql failed: \(command.prefix(80))") }
        return (ContinuousClock.now - start).seconds
    }

    static func run(graphURL: DatabaseURL, writeURL: DatabaseURL, graphDataDirectory: String?, writeDataDirectory: String?, readsPerClient: Int, reads readsToo: Bool = true, logger: Logger)
        async throws
    {
        let rows = 20_000
        let tag = UUID().uuidString.prefix(8).lowercased()
        let schema = try SchemaName("graph_bench_\(tag)"), copySchema = try SchemaName("graph_benchcopy_\(tag)")
        try await PostgresConnection.withConnection(configuration: .init(url: graphURL, applicationName: "kt-bench"), logger: logger) { graphDB in
            try await PostgresConnection.withConnection(configuration: .init(url: writeURL, applicationName: "kt-bench"), logger: logger) { writeDB in
                for name in [schema, copySchema] { try await Migrator.migrateGraph(schema: name, graphDB: graphDB, writeDB: writeDB, logger: logger) }
            }
        }
        // The graph through a GraphSystem on this pair (both databases reached directly).
        var systemSettings = Settings()
        systemSettings.databaseURL = graphURL
        systemSettings.writeDatabaseURL = writeURL
        systemSettings.writeDBPgBouncer = false
        systemSettings.graphPool = PoolSettings(size: 10, maxOverflow: 0, timeout: .seconds(60), recycle: .seconds(3600))
        systemSettings.writePool = PoolSettings(size: 20, maxOverflow: 0, timeout: .seconds(60), recycle: .seconds(3600))
        let system = try GraphSystem(settings: systemSettings, configuration: .init(applicationName: "kt-bench"), logger: logger)
        defer { Task { await system.shutdown() } }
        _ = try await system.prepare()
        let repository = GraphRepository(system.controlPlane, logger: logger)
        let graph = try await repository.create(slug: try GraphSlug("bench_\(tag)"), name: "Benchmark \(tag)")
        try await repository.update(id: graph.id, status: .active)
        let sessions = try await system.sessions(graphID: graph.id)
        let writeSession = sessions.writeSession, graphSession = sessions.graphSession, graphPool = graphSession.pool
        let worker = WorkerGraphEngine(writeSession: writeSession, collections: QdrantCollections(graphSlug: "bench_\(tag)"), logger: logger)
        // Paired rounds, as for the point reads: each round upserts new rows, COPYs the very
        // rows written (every column, exported from the table the engine wrote) into the same
        // table of the twin schema, syncs them and COPYs the synced rows likewise into graph-db.
        // The figures are the medians of the rounds' ratios.
        let csv = FileManager.default.temporaryDirectory.appendingPathComponent("kt-bench-\(tag).csv")
        defer { try? FileManager.default.removeItem(at: csv) }
        var settings = SyncSettings()
        settings.batchSize = 1000
        let sync = SyncEngine(writeSession: writeSession, graphSession: graphSession, graphSlug: "bench_\(tag)", settings: settings, logger: logger)
        func concepts(round: Int) -> [String] { (0..<rows).map { "Benchmark concept \(round)-\($0)" } }
        var upserts: [PairedRound] = [], syncs: [PairedRound] = [], syncCPUPerRow: [Double] = []
        for round in 0..<rounds {
            let batch = concepts(round: round)
            let rowsOfRound = "WHERE concept LIKE 'Benchmark concept \(round)-%'"
            var start = ContinuousClock.now
            for chunk in stride(from: 0, to: rows, by: 1000) {
                try await worker.createNodes(batch[chunk..<min(rows, chunk + 1000)].map { WorkerGraphEngine.NodeSpec(concept: $0) })
            }
            let upsertSeconds = (ContinuousClock.now - start).seconds
            _ = try psql(writeURL, "\\copy (SELECT * FROM \(schema.quoted).write_nodes \(rowsOfRound)) TO '\(csv.path)' WITH (FORMAT csv)")
            let copyWrite = try psql(writeURL, "\\copy \(copySchema.quoted).write_nodes FROM '\(csv.path)' WITH (FORMAT csv)")
            upserts.append(PairedRound(ours: Double(rows) / upsertSeconds, reference: Double(rows) / copyWrite))

            start = ContinuousClock.now
            let cpu = cpuSeconds(children: false)
            let report = try await sync.syncUntilIdle(maxCycles: 1000)
            let syncSeconds = (ContinuousClock.now - start).seconds
            guard report.applied["write_nodes"] == rows else {
                throw KTGraphError(code: .invalidArgument, message: "the sync applied \(report.applied["write_nodes"] ?? 0) of \(rows) nodes")
            }
            syncCPUPerRow.append((cpuSeconds(children: false) - cpu) / Double(rows) * 1e6)
            _ = try psql(graphURL, "\\copy (SELECT * FROM \(schema.quoted).nodes \(rowsOfRound)) TO '\(csv.path)' WITH (FORMAT csv)")
            let copyGraph = try psql(graphURL, "\\copy \(copySchema.quoted).nodes FROM '\(csv.path)' WITH (FORMAT csv)")
            syncs.append(PairedRound(ours: Double(rows) / syncSeconds, reference: Double(rows) / copyGraph))
        }
        let upsert = PairedRound.summary(upserts), synced = PairedRound.summary(syncs)
        print(String(format: "  batch upsert %d nodes: %.0f rows/s   COPY %.0f rows/s   ratio %@ (target >= 0.50x)", rows, upsert.ours, upsert.reference, upsert.ratio))
        print(
            String(
                format: "  sync %d nodes: %.0f rows/s   COPY %.0f rows/s   ratio %@ (target >= 0.50x)   (client CPU per row: %.1f us)",
                rows, synced.ours, synced.reference, synced.ratio, syncCPUPerRow.reduce(0, +) / Double(syncCPUPerRow.count)))

        // ReadGraphEngine point reads vs pgbench -S.
        if readsToo { try await readBenchmarks() }
        func readBenchmarks() async throws {
            let reader = ReadGraphEngine(session: graphSession, collections: QdrantCollections(graphSlug: "bench_\(tag)"), logger: logger)
            let ids = concepts(round: 0).map { GraphKeys.id(forKey: GraphKeys.nodeKey($0)) }
            // Reads from plain tasks, and from tasks preferring the pool's executor (each completed
            // statement resumes its task on the loop thread instead of hopping to the global pool).
            @Sendable func reads(clients: Int, onPoolExecutor: Bool) async throws -> Double {
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            @Sendable func loop() async throws {
                                var random = FastRandom(seed: UInt64(client + 1) * 7919)
                                for _ in 0..<readsPerClient { _ = try await reader.node(id: ids[Int.random(in: 0..<ids.count, using: &random)]) }
                            }
                            if onPoolExecutor { try await withTaskExecutorPreference(graphPool.executor) { try await loop() } } else { try await loop() }
                        }
                    }
                    try await group.waitForAll()
                }
                return Double(clients * readsPerClient) / (ContinuousClock.now - start).seconds
            }
            _ = try await reads(clients: 8, onPoolExecutor: false)  // warm-up: open the connections
            // Paired rounds: each round runs pgbench -S and then each of our modes, so a slow
            // spell of the shared machine falls on both sides of that round's ratios; the figure
            // is the median ratio over the rounds.
            for clients in PointReadRuns.clientCounts {
                var measured: [Bool: [PairedRound]] = [:]
                for _ in 0..<Self.rounds {
                    let reference = try PointReadRuns.reference(clients: clients)
                    for onPoolExecutor in PointReadRuns.executorModes {
                        measured[onPoolExecutor, default: []].append(PairedRound(ours: try await reads(clients: clients, onPoolExecutor: onPoolExecutor), reference: reference))
                    }
                }
                for onPoolExecutor in PointReadRuns.executorModes {
                    let summary = PairedRound.summary(measured[onPoolExecutor] ?? [])
                    print(
                        String(
                            format: "  ReadGraphEngine.node c=%d %-18@ %6.0f reads/s   pgbench -S %6.0f tps   ratio %@ (target >= 0.80x)",
                            clients, onPoolExecutor ? "(on pool executor)" : "(plain tasks)", summary.ours, summary.reference, summary.ratio))
                }
            }

            // Read p99 on graph-db while 16 worker tasks saturate write-db, vs idle.
            guard PointReadRuns.environment["KT_BENCH_NO_P99"] != "1" else { return }
            func p99(reads: Int) async throws -> Double {
                var latencies: [Double] = []
                latencies.reserveCapacity(reads)
                var random = FastRandom(seed: 42)
                for _ in 0..<reads {
                    let t0 = ContinuousClock.now
                    _ = try await reader.node(id: ids[Int.random(in: 0..<ids.count, using: &random)])
                    latencies.append((ContinuousClock.now - t0).seconds)
                }
                latencies.sort()
                return latencies[Int(Double(reads) * 0.99)]
            }
            let idle = try await p99(reads: 3000)
            let (loaded, rate) = try await whileWriting(worker, tasks: 16) {
                try await Task.sleep(for: .milliseconds(300))
                return try await p99(reads: 3000)
            }
            print(
                String(
                    format: "  read p99 idle %.2f ms, with 16 writers on write-db (%.0f writes/s) %.2f ms   ratio %.2fx (target <= 1.50x)",
                    idle * 1000, rate, loaded * 1000, loaded / idle))
            // The ADR puts write-db, and the workers, apart from graph-db and the API. On one machine,
            // the lowest CPU priority for the write-db cluster and for a worker process models that:
            // graph-db and the reader no longer queue behind them for the two shared cores.
            if let data = writeDataDirectory, try renice(cluster: data, to: 19) {
                defer { _ = try? renice(cluster: data, to: 0) }
                let (separated, rate) = try await withWriteLoadProcess(launcher: ["/usr/bin/nice", "-n", "19"], writeURL: writeURL, schema: schema, tasks: 16) {
                    try await p99(reads: 3000)
                }
                print(
                    String(
                        format: "  read p99 with 16 writers in a worker process (%.0f writes/s), worker and write-db cluster at nice 19: %.2f ms   ratio %.2fx (target <= 1.50x)",
                        rate, separated * 1000, separated / idle))
            }
            // Closer still to separate hardware: the write side (write-db cluster and worker
            // process) on the last CPU, the read side (graph-db cluster and this process) on the
            // others; idle is measured again in that placement.
            let cpus = ProcessInfo.processInfo.activeProcessorCount
            if cpus >= 2, let writeData = writeDataDirectory, let graphData = graphDataDirectory {
                let readCPUs = "0-\(cpus - 2)", writeCPU = "\(cpus - 1)", all = "0-\(cpus - 1)"
                defer { for data in [graphData, writeData] { _ = try? pin(cluster: data, to: all) }; _ = try? pin(process: getpid(), to: all) }
                if try pin(cluster: graphData, to: readCPUs), try pin(cluster: writeData, to: writeCPU), try pin(process: getpid(), to: readCPUs) {
                    let idlePinned = try await p99(reads: 3000)
                    let (loadedPinned, rate) = try await withWriteLoadProcess(launcher: ["/usr/bin/taskset", "-c", writeCPU], writeURL: writeURL, schema: schema, tasks: 16) {
                        try await p99(reads: 3000)
                    }
                    print(
                        String(
                            format:
                                "  read p99, write-db and a worker process of 16 writers (%.0f writes/s) on CPU %@, graph-db and reader on CPU %@: idle %.2f ms, loaded %.2f ms   ratio %.2fx (target <= 1.50x)",
                            rate, writeCPU, readCPUs, idlePinned * 1000, loadedPinned * 1000, loadedPinned / idlePinned))
                }
            }
        }

        try await PostgresConnection.withConnection(configuration: .init(url: graphURL, applicationName: "kt-bench"), logger: logger) { graphDB in
            try await PostgresConnection.withConnection(configuration: .init(url: writeURL, applicationName: "kt-bench"), logger: logger) { writeDB in
                for name in [schema, copySchema] {
                    try await graphDB.execute(simple: "DROP SCHEMA \(name.quoted) CASCADE", logger: logger)
                    try await writeDB.execute(simple: "DROP SCHEMA \(name.quoted) CASCADE", logger: logger)
                }
            }
        }
    }
}

/// The process ids of a local cluster's postmaster and its current children, or `nil`.
func clusterProcesses(_ dataDirectory: String) throws -> [String]? {
    guard let pidFile = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
        let postmaster = pidFile.split(separator: "\n").first.map(String.init)
    else { return nil }
    return [postmaster] + (try runCapturing("/usr/bin/pgrep", ["-P", postmaster]).output.split(separator: "\n").map(String.init))
}

/// Sets the CPU priority of a local cluster's postmaster and its current backends (root only);
/// returns `false` when it could not.
func renice(cluster dataDirectory: String, to value: Int) throws -> Bool {
    guard let pids = try clusterProcesses(dataDirectory) else { return false }
    return try runCapturing("/usr/bin/renice", ["-n", "\(value)", "-p"] + pids).status == 0
}

/// Restricts a local cluster's postmaster and its current processes to the CPU list `cpus`
/// (backends forked later inherit it); returns `false` when it could not.
func pin(cluster dataDirectory: String, to cpus: String) throws -> Bool {
    guard let pids = try clusterProcesses(dataDirectory) else { return false }
    for pid in pids where try runCapturing("/usr/bin/taskset", ["-a", "-p", "-c", cpus, pid]).status != 0 { return false }
    return true
}

/// Restricts every thread of a process to the CPU list `cpus`; returns `false` when it could not.
func pin(process pid: Int32, to cpus: String) throws -> Bool {
    try runCapturing("/usr/bin/taskset", ["-a", "-p", "-c", cpus, "\(pid)"]).status == 0
}

/// One round of a paired measurement: our rate and the reference's, measured back to back.
struct PairedRound {
    var ours: Double
    var reference: Double

    /// Mean rates over the rounds, and the median of the rounds' ratios with their range.
    static func summary(_ rounds: [PairedRound]) -> (ours: Double, reference: Double, ratio: String) {
        let ratios = rounds.map { $0.ours / $0.reference }.sorted()
        let mean = { (values: [Double]) in values.reduce(0, +) / Double(max(1, values.count)) }
        guard let low = ratios.first, let high = ratios.last else { return (0, 0, "-") }
        let ratio = String(format: "%.2fx, median of %d rounds (%.2f-%.2f)", ratios[ratios.count / 2], ratios.count, low, high)
        return (mean(rounds.map(\.ours)), mean(rounds.map(\.reference)), ratio)
    }
}

/// A value shared by tasks and threads (a stop flag, a counter).
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update(_ change: (inout Value) -> Void) { mutex.withLock { change(&$0) } }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
