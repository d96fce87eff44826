import ArgumentParser
import Foundation
import KTDB
import KTGraph
import KTProvision

/// `kt load`: a steady write load on one graph through the WorkerGraphEngine, for watching a
/// move, a pool or a PgBouncer under writes.
///
/// Each acknowledged write prints `ok N` (its node's concept is `PREFIX N`). A write refused
/// because the graph is moving (``GraphProvisioner/writesPausedSQLState``) waits and is tried
/// again; any other failure prints `error N: …` on stderr, and the command exits 1 at the end.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Write nodes to a graph at a steady pace for a while; retry writes a move pauses.")

    @Option(help: "Graph slug.") var graph: String
    @Option(help: "How long to write, in seconds.") var seconds: Double = 10
    @Option(name: .customLong("interval-ms"), help: "Pause between writes, in milliseconds.") var intervalMilliseconds: Int = 10
    @Option(help: "The concept of node N is 'PREFIX N'.") var prefix: String = "Load"
    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be in (0, 86400]") }
        guard (0...60_000).contains(intervalMilliseconds) else { throw ValidationError("--interval-ms must be in 0...60000") }
    }

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            let failed = try await environment.withSystem { system in
                let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                var index = 0, paused = 0, failed = 0
                while ContinuousClock.now < deadline {
                    do {
                        // The engine is looked up per write: a move re-routes the graph meanwhile.
                        try await system.workerEngine(slug: graph, logger: environment.logger).createNode(concept: "\(prefix) \(index)")
                        FileHandle.standardOutput.write(Data("ok \(index)\n".utf8))
                        index += 1
                    } catch let error as KTDBError where error.sqlState == GraphProvisioner.writesPausedSQLState {
                        paused += 1
                        try await Task.sleep(for: .milliseconds(50))
                        continue
                    } catch {
                        failed += 1
                        FileHandle.standardError.write(Data("error \(index): \(errorText(error))\n".utf8))
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try await Task.sleep(for: .milliseconds(intervalMilliseconds))
                }
                print("acknowledged \(index) writes; \(paused) paused by a move and retried; \(failed) failed")
                return failed
            }
            if failed > 0 { Foundation.exit(1) }
        }
    }
}
