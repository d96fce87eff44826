import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// What every subcommand needs: settings, a logger, and one-off connections to the system databases.
struct CLIEnvironment {
    let settings: Settings
    let logger: Logger

    static func load(verbose: Bool) async throws -> CLIEnvironment {
        var logger = Logger(label: "kt")
        logger.logLevel = verbose ? .debug : .warning
        let settings = try await Settings.load(logger: logger)
        return CLIEnvironment(settings: settings, logger: logger)
    }

    func graphConfiguration(application: String) -> PostgresConnection.Configuration {
        .init(url: settings.databaseURL, applicationName: application, defaultSSLMode: settings.dbSSLMode)
    }

    func writeConfiguration(application: String) -> PostgresConnection.Configuration {
        .init(url: settings.writeDatabaseURL, applicationName: application, defaultSSLMode: settings.effectiveWriteSSLMode)
    }

    /// Loads the environment and runs `body`; any error becomes one line on stderr and exit 1.
    static func run(verbose: Bool, _ body: (CLIEnvironment) async throws -> Void) async {
        do {
            try await body(try await load(verbose: verbose))
        } catch {
            fail(error)
        }
    }

    /// Runs `body` with a small pool on the control plane (system graph-db, `public`).
    func withControlPlane<T: Sendable>(_ body: (DatabaseSession) async throws -> T) async throws -> T {
        var sizing = settings.graphPool
        sizing.size = 2
        sizing.maxOverflow = 2
        return try await PostgresConnectionPool.withPool(
            configuration: .init(connection: graphConfiguration(application: "kt-cli"), pool: sizing, label: "control-plane"), backgroundLogger: logger
        ) { try await body(DatabaseSession(pool: $0)) }
    }

    /// Runs `body` with a graph provisioner on the control plane.
    func withProvisioner<T: Sendable>(_ body: (GraphProvisioner) async throws -> T) async throws -> T {
        try await withControlPlane { try await body(GraphProvisioner(settings: settings, controlPlane: $0, logger: logger)) }
    }

    /// Runs `body` with a graph repository on the control plane.
    func withRepository<T: Sendable>(_ body: (GraphRepository) async throws -> T) async throws -> T {
        try await withControlPlane { try await body(GraphRepository($0, logger: logger)) }
    }

    /// Runs `body` with a graph session resolver on small system pools; every pool it opened is shut down afterwards.
    func withResolver<T: Sendable>(_ body: (GraphSessionResolver) async throws -> T) async throws -> T {
        var graphSizing = settings.graphPool
        graphSizing.size = 2
        graphSizing.maxOverflow = 2
        var writeSizing = settings.writePool
        writeSizing.size = 3
        writeSizing.maxOverflow = 2
        return try await PostgresConnectionPool.withPool(
            configuration: .init(connection: graphConfiguration(application: "kt-cli"), pool: graphSizing, label: "graph-db"), backgroundLogger: logger
        ) { graphPool in
            try await PostgresConnectionPool.withPool(
                configuration: .init(connection: .init(url: settings.writeDatabaseURL, applicationName: "kt-cli", defaultSSLMode: settings.effectiveWriteSSLMode,
                                                       preparedStatements: .disabled), pool: writeSizing, label: "write-db"), backgroundLogger: logger
            ) { writePool in
                let resolver = GraphSessionResolver(
                    settings: settings, controlPlane: DatabaseSession(pool: graphPool), systemGraphPool: graphPool, systemWritePool: writePool, logger: logger)
                do {
                    let value = try await body(resolver)
                    await resolver.shutdown()
                    return value
                } catch {
                    await resolver.shutdown()
                    throw error
                }
            }
        }
    }

    /// Runs `body` with one-off connections to the system graph-db and write-db.
    func withSystemConnections<T: Sendable>(_ body: (PostgresConnection, PostgresConnection) async throws -> T) async throws -> T {
        try await PostgresConnection.withConnection(configuration: graphConfiguration(application: "kt-cli"), logger: logger) { graph in
            try await PostgresConnection.withConnection(configuration: writeConfiguration(application: "kt-cli"), logger: logger) { write in
                try await body(graph, write)
            }
        }
    }
}

/// Prints an error as one line on stderr (the detail, which never holds a secret) and exits non-zero.
func fail(_ error: any Error) -> Never {
    let text: String
    switch error {
    case let error as KTDBError: text = error.message
    case let error as KTConfigError: text = error.detail
    case let error as KTProvisionError: text = error.message
    case let error as KTGraphError: text = error.message
    default: text = String(describing: error)
    }
    FileHandle.standardError.write(Data("kt: \(text)\n".utf8))
    exit(1)
}
