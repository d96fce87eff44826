import ArgumentParser
import KTDB

/// `kt migrate`: migrates the control plane and the default graph on the system databases.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply the embedded migrations to the system databases.")

    @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

    func run() async throws {
        do {
            let environment = try await CLIEnvironment.load(verbose: verbose)
            let report = try await environment.withSystemConnections { graph, write in
                try await Migrator.migrateSystem(graphDB: graph, writeDB: write, logger: environment.logger)
            }
            if report.applied.isEmpty {
                print("Already up to date.")
            } else {
                for migration in report.applied { print("applied \(migration.set)/\(migration.version) \(migration.name)") }
            }
        } catch {
            fail(error)
        }
    }
}
