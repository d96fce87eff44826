import ArgumentParser
import KTProvision

/// `kt migrate`: migrates the control plane and the default graph on the system databases.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Migrate the control plane and every active graph wherever it lives; recover interrupted provisioning.")

    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        await CLIEnvironment.run(verbose: verbose) { environment in
            let report = try await environment.withSystem { try await $0.prepare() }
            print("migrations applied: \(report.appliedMigrations)")
            print("graphs checked: \(report.migratedGraphs.count)")
            if !report.recoveredGraphs.isEmpty { print("interrupted provisioning moved to error: \(report.recoveredGraphs.joined(separator: ", "))") }
        }
    }
}
