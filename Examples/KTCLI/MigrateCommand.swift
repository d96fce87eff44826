import ArgumentParser
import Foundation
import KTProvision

/// `kt migrate`: the control plane and every active graph wherever it lives, with progress; exits
/// non-zero when a graph could not be migrated (the others are migrated all the same).
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate the control plane and every active graph wherever it lives; recover interrupted provisioning.")

    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            let display = ProgressDisplay(title: "migrating graphs")
            let report = try await environment.withSystem { system in
                try await system.prepare { progress in
                    let outcome = progress.outcome
                    let text =
                        switch outcome.result {
                        case .migrated(let count): "\(count) migration(s) applied"
                        case .upToDate: "up to date"
                        case .failed(let reason): "FAILED: \(reason)"
                        }
                    display.update(completed: progress.completed, total: progress.total, line: "\(outcome.slug) (\(outcome.database)): \(text)")
                }
            }
            print("migrations applied: \(report.appliedMigrations)")
            print("graphs at head: \(report.migratedGraphs.count) of \(report.outcomes.count)")
            if !report.movingGraphs.isEmpty { print("moving (finish with kt graphs move SLUG --to KEY --resume): \(report.movingGraphs.joined(separator: ", "))") }
            if !report.recoveredGraphs.isEmpty { print("interrupted provisioning moved to error: \(report.recoveredGraphs.joined(separator: ", "))") }
            let failed = report.failedGraphs
            guard failed.isEmpty else {
                print("failed graphs (\(failed.count)):")
                for outcome in failed {
                    if case .failed(let reason) = outcome.result { print("  \(outcome.slug) (\(outcome.database)): \(reason)") }
                }
                FileHandle.standardError.write(Data("kt: \(failed.count) graph(s) could not be migrated\n".utf8))
                Foundation.exit(1)
            }
        }
    }
}
