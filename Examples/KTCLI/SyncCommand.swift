import ArgumentParser
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import ServiceLifecycle
import UnixSignals

/// `kt sync`: copy write-db to graph-db for one graph or all active graphs.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Sync write-db to graph-db (one cycle per graph with --once, else every SYNC_INTERVAL until Ctrl-C).")

    @Option(help: "Only this graph (default: every active graph).") var graph: String?
    @Flag(help: "Run until nothing is left to copy, then exit.") var once = false
    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            try await environment.withSystem { system in
                let targets: @Sendable () async throws -> [SyncTarget] = {
                    if let graph { return [try await system.sessions(slug: graph).syncTarget] }
                    return try await system.syncTargets()
                }
                if once {
                    for target in try await targets() {
                        let engine = SyncEngine(
                            writeSession: target.writeSession, graphSession: target.graphSession, graphSlug: target.slug,
                            settings: environment.settings.sync, logger: environment.logger)
                        let report = try await engine.syncUntilIdle()
                        print(
                            "\(target.slug): applied \(report.totalApplied - report.deleted), deleted \(report.deleted), deferred \(report.deferred), failed \(report.failed), abandoned \(report.abandoned)"
                        )
                    }
                } else {
                    let service = SyncService(settings: environment.settings.sync, logger: environment.logger, targets: targets)
                    let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: environment.logger)
                    print("syncing every \(environment.settings.sync.interval); Ctrl-C stops after the cycle in progress")
                    try await group.run()
                }
            }
        }
    }
}
