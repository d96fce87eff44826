import ArgumentParser
import Foundation
import KTDB
import KTProvision

/// `kt graphs create|list|show|status|retry|delete|move|export|import`.
struct GraphsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graphs", abstract: "Create and manage graphs.",
        subcommands: [Create.self, List.self, Show.self, Status.self, Retry.self, Delete.self, Move.self, Export.self, Import.self])

    static func json(_ graph: Graph) -> [String: Any] {
        [
            "id": graph.id.uuidString.lowercased(), "slug": graph.slug, "name": graph.name, "description": graph.description ?? NSNull(),
            "is_default": graph.isDefault, "status": graph.status.rawValue, "schema_name": graph.schemaName,
            "database_connection_id": graph.databaseConnectionID?.uuidString.lowercased() ?? NSNull(),
            "created_at": ISO8601DateFormatter().string(from: graph.createdAt),
        ]
    }

    static func line(_ graph: Graph) -> String {
        "\(graph.slug)\t\(graph.status)\t\(graph.schemaName)\t\(graph.name)"
    }

    /// Prints each provisioning step as it happens.
    static func progress(_ event: ProvisioningEvent) {
        switch event.phase {
        case .started: print("  … \(event.step)")
        case .finished: print("  ✓ \(event.step)\(event.detail.isEmpty ? "" : ": \(event.detail)")")
        case .failed: print("  ✗ \(event.step): \(event.detail)")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a graph in a database pair (default: the system pair).")
        @Option(help: "Slug: 3–57 of a-z, 0-9, _ (not first or last).") var slug: String
        @Option(help: "Display name.") var name: String
        @Option(help: "Description.") var description: String?
        @Option(help: "Database connection key ('default' for the system pair).") var database: String?
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let graph = try await environment.withProvisioner {
                    try await $0.createGraph(slug: slug, name: name, description: description, databaseKey: database, progress: GraphsCommand.progress)
                }
                print("created \(graph.slug) (\(graph.status))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List graphs that are not deleted.")
        @Flag(help: "Print JSON.") var json = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let graphs = try await environment.withRepository { try await $0.listAccessible(userID: nil, isSuperuser: true) }
                if json { printJSON(graphs.map(GraphsCommand.json)) } else { graphs.forEach { print(GraphsCommand.line($0)) } }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one graph.")
        @Argument var slug: String
        @Flag(help: "Print JSON.") var json = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                guard let graph = try await environment.withRepository({ try await $0.graph(slug: slug) }) else {
                    throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
                }
                if json { printJSON(GraphsCommand.json(graph)) } else { print(GraphsCommand.line(graph)) }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Provision again a graph in status 'error'.")
        @Argument var slug: String
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let graph = try await environment.withProvisioner { try await $0.retry(slug: slug, progress: GraphsCommand.progress) }
                print("\(graph.slug) is \(graph.status)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a graph (soft by default; --hard drops its schemas and collections).")
        @Argument var slug: String
        @Flag(help: "Drop schemas and collections and free the slug.") var hard = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                try await environment.withProvisioner { try await $0.deleteGraph(slug: slug, hard: hard) }
                print("deleted \(slug)\(hard ? " (hard)" : "")")
            }
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a graph to another database pair: copy, pause writes for the catch-up, verify, switch, drop the source.")
        @Argument var slug: String
        @Option(help: "The target database connection key ('default' for the system pair).") var to: String
        @Flag(help: "Roll back a move a stopped process left behind, then move again.") var resume = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let display = ProgressDisplay(title: "move \(slug)")
                let graph = try await environment.withProvisioner {
                    try await $0.moveGraph(slug: slug, toDatabase: to, resume: resume) { event in
                        let step = (GraphProvisioner.movePhases.firstIndex(of: event.phase) ?? 0) + 1
                        display.update(completed: step, total: GraphProvisioner.movePhases.count, line: event.detail.isEmpty ? event.phase : "\(event.phase): \(event.detail)")
                    }
                }
                print("moved \(graph.slug) to \(to)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a graph to one file: settings, both schemas' rows, its Qdrant points, migrations, a checksum per part.")
        @Argument var slug: String
        @Option(name: .shortAndLong, help: "The archive file to write.") var output: String
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let display = ProgressDisplay(title: "export \(slug)")
                let manifest = try await environment.withProvisioner {
                    try await $0.exportGraph(slug: slug, to: URL(fileURLWithPath: output)) { event in
                        display.update(completed: event.completed, total: event.total, line: "\(event.part): \(event.rows) rows")
                    }
                }
                let rows = manifest.parts.filter { $0.store != "qdrant" }.reduce(0) { $0 + $1.rows }
                let points = manifest.parts.filter { $0.store == "qdrant" }.reduce(0) { $0 + $1.rows }
                print("exported \(slug) to \(output): \(manifest.parts.count) parts, \(rows) rows, \(points) points")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a graph from an archive written by 'kt graphs export' (checked before anything is created).")
        @Argument var file: String
        @Option(help: "The new graph's slug.") var slug: String
        @Option(help: "Display name (default: the archived graph's).") var name: String?
        @Option(help: "Database connection key ('default' for the system pair).") var database: String?
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let display = ProgressDisplay(title: "import \(slug)")
                let graph = try await environment.withProvisioner {
                    try await $0.importGraph(from: URL(fileURLWithPath: file), slug: slug, name: name, databaseKey: database) { event in
                        display.update(completed: event.completed, total: event.total, line: "\(event.part): \(event.rows) rows")
                    }
                }
                print("imported \(graph.slug) (\(graph.status))")
            }
        }
    }
}
