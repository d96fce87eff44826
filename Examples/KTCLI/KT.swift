import ArgumentParser

/// `kt`: the example command-line tool. It uses only the public API of the SDK.
@main
struct KT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kt",
        abstract: "Knowledge Tree example CLI (built on the KT Swift SDK).",
        subcommands: [MigrateCommand.self, UsersCommand.self, DatabaseConnectionsCommand.self, GraphsCommand.self, SyncCommand.self, DemoCommand.self, LoadCommand.self]
    )
}
