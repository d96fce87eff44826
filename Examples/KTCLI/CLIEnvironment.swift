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

    /// Loads the environment and runs `body`; any error becomes one line on stderr and exit 1.
    static func run(verbose: Bool, _ body: (CLIEnvironment) async throws -> Void) async {
        do {
            try await body(try await load(verbose: verbose))
        } catch {
            fail(error)
        }
    }

    /// Runs `body` with the process's graph system (system pools of at most 4 connections: a
    /// command does a few things at a time), shut down afterwards.
    func withSystem<T: Sendable>(_ body: (GraphSystem) async throws -> T) async throws -> T {
        var settings = self.settings
        settings.graphPool.size = 2
        settings.graphPool.maxOverflow = 2
        settings.writePool.size = 2
        settings.writePool.maxOverflow = 2
        return try await withGraphSystem(settings: settings, configuration: .init(applicationName: "kt-cli"), logger: logger, body)
    }

    /// Runs `body` with a session on the control plane (system graph-db, `public`).
    func withControlPlane<T: Sendable>(_ body: (DatabaseSession) async throws -> T) async throws -> T {
        try await withSystem { try await body($0.controlPlane) }
    }

    /// Runs `body` with the graph provisioner.
    func withProvisioner<T: Sendable>(_ body: (GraphProvisioner) async throws -> T) async throws -> T {
        try await withSystem { try await body($0.provisioner) }
    }

    /// Runs `body` with a graph repository on the control plane.
    func withRepository<T: Sendable>(_ body: (GraphRepository) async throws -> T) async throws -> T {
        try await withSystem { try await body(GraphRepository($0.controlPlane, logger: logger)) }
    }
}

/// Prints an error as one line on stderr (the detail, which never holds a secret) and exits non-zero.
func fail(_ error: any Error) -> Never {
    FileHandle.standardError.write(Data("kt: \(errorText(error))\n".utf8))
    exit(1)
}

/// An error's detail for a person (never a secret).
func errorText(_ error: any Error) -> String {
    switch error {
    case let error as KTDBError: error.message
    case let error as KTConfigError: error.detail
    case let error as KTProvisionError: error.message
    case let error as KTGraphError: error.message
    default: String(describing: error)
    }
}
