import ArgumentParser
import Foundation
import KTConfig
import KTCore
import KTDB
import KTProvision

/// `kt users create`.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Manage users and their API tokens.", subcommands: [Create.self, Token.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user and issue an API token; the token is the last line of stdout (shown once, stored hashed).")
        @Option(help: "E-mail address.") var email: String
        @Flag(help: "Make the user a superuser.") var superuser = false
        @Option(help: "Display name.") var displayName: String?
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let (user, token) = try await environment.withControlPlane { session in
                    try await session.withTransaction(logger: environment.logger) { transaction in
                        let users = UserRepository(transaction, logger: environment.logger)
                        let user = try await users.createUser(email: email, isSuperuser: superuser, displayName: displayName)
                        return (user, try await users.issueToken(userID: user.id))
                    }
                }
                print("created \(user.isSuperuser ? "superuser" : "user") \(user.email) \(user.id.uuidString.lowercased())")
                print(token.token.revealedValue)
            }
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue another API token for an existing user; the token is the last line of stdout.")
        @Option(help: "E-mail address.") var email: String
        @Option(help: "Limit the token to these graph slugs (comma-separated).") var graphs: String?
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let token = try await environment.withControlPlane { session in
                    let users = UserRepository(session, logger: environment.logger)
                    guard let user = try await users.user(email: email) else {
                        throw KTProvisionError(code: .notFound, message: "no user with e-mail address '\(email)'")
                    }
                    return try await users.issueToken(userID: user.id, graphSlugs: graphs.map { $0.split(separator: ",").map(String.init) })
                }
                print(token.token.revealedValue)
            }
        }
    }
}
