import ArgumentParser
import Foundation
import KTConfig
import KTDB
import KTProvision

/// `kt db-connections add|list`.
struct DatabaseConnectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db-connections", abstract: "Manage the database pairs graphs can be created in.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a database pair configured in this process's settings.")
        @Option(help: "Display name.") var name: String
        @Option(help: "Key into graph_databases (GRAPH_DATABASES / EXTRA_DB_<KEY>_* / YAML).") var key: String
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                _ = try environment.settings.graphDatabase(forKey: key)
                let row = try await environment.withRepository { try await $0.createDatabaseConnection(name: name, configKey: key) }
                print("added \(row.name) (\(row.configKey)) \(row.id.uuidString.lowercased())")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List database pairs: the system pair ('default') first, then by name.")
        @Flag(help: "Print JSON.") var json = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let rows = try await environment.withRepository { try await $0.listDatabaseConnections() }
                let entries: [[String: String?]] =
                    [["id": nil, "name": GraphDatabases.defaultKey, "config_key": GraphDatabases.defaultKey, "created_at": nil]]
                    + rows.map { ["id": $0.id.uuidString.lowercased(), "name": $0.name, "config_key": $0.configKey, "created_at": ISO8601DateFormatter().string(from: $0.createdAt)] }
                if json {
                    printJSON(entries)
                } else {
                    for entry in entries { print("\(entry["config_key"]!!)\t\(entry["name"]!!)") }
                }
            }
        }
    }
}

/// Prints JSON (sorted keys) on stdout.
func printJSON(_ value: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])) ?? Data("null".utf8)
    print(String(decoding: data, as: UTF8.self))
}
