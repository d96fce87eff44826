public import Hummingbird
public import KTConfig
import KTDB
import KTProvision
import KTQdrant
public import Logging
import NIOCore
import ServiceLifecycle
import Foundation
import HTTPTypes

/// The example HTTP server: graph management over the KT SDK, on Hummingbird 2.
///
/// ```swift
/// let app = try await KTServer.makeApplication(settings: settings, configuration: .init(), logger: logger)
/// try await app.runService()   // graceful shutdown on SIGTERM/SIGINT
/// ```
///
/// Before it serves, ``makeApplication(settings:configuration:logger:onServerRunning:)`` builds
/// the process's `GraphSystem`, runs its `prepare` (migrations everywhere, abandoned provisioning
/// to `error`, refusal of a `default` connection row) and ensures the default graph's Qdrant
/// collections. The system is a service of the application: it runs every pool and stops them
/// after the server on graceful shutdown.
public enum KTServer {
    /// Where the server listens.
    public struct Configuration: Sendable {
        /// Host to bind (default `127.0.0.1`).
        public var host: String
        /// Port to bind (default `8080`; `0` picks a free one, reported to `onServerRunning`).
        public var port: Int

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 8080) {
            self.host = host
            self.port = port
        }

        /// Reads `KT_HOST` and `KT_PORT`.
        ///
        /// - Throws: ``KTConfigError`` when `KT_PORT` is not a port number.
        public static func fromEnvironment(_ environment: [String: String]) throws -> Configuration {
            var configuration = Configuration()
            if let host = environment["KT_HOST"], !host.isEmpty { configuration.host = host }
            if let text = environment["KT_PORT"], !text.isEmpty {
                guard let port = Int(text), (0...65535).contains(port) else {
                    throw KTConfigError(code: .invalidValue, key: "KT_PORT", detail: "KT_PORT must be a port number (0-65535), got '\(text)'")
                }
                configuration.port = port
            }
            return configuration
        }
    }

    /// Prepares the databases and builds the application (its graph system is a service of the application).
    ///
    /// - Parameter onServerRunning: called with the bound port once the server listens.
    /// - Throws: what `ServerStartup.prepare` throws (for example a `default` connection row).
    public static func makeApplication(
        settings: Settings, configuration: Configuration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let system = try GraphSystem(settings: settings, configuration: .init(applicationName: "kt-api"), logger: logger)
        let report = try await system.prepare()
        logger.debug("startup prepared", metadata: [
            "kt.migrations_applied": "\(report.appliedMigrations)", "kt.graphs_migrated": "\(report.migratedGraphs.count)",
            "kt.graphs_recovered": "\(report.recoveredGraphs)",
        ])
        if !report.failedGraphs.isEmpty {
            // Not normal operation: those graphs answer 503 with the reason until a migration succeeds.
            logger.warning("some graphs could not be migrated; they are not served", metadata: [
                "kt.graphs_failed": "\(report.failedGraphs.map(\.slug))",
            ])
        }
        do {
            let qdrant = try QdrantClient.shared(settings: settings.qdrant, logger: logger)
            try await qdrant.ensureGraphCollections(.defaultGraph, vectorSize: settings.embeddingDimensions)
        } catch {
            logger.warning("could not ensure the default graph's Qdrant collections", metadata: ["kt.error": "\(error)"])
        }
        let state = ServerState(system: system, logger: logger)
        return Application(
            router: makeRouter(state: state),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kt-server"),
            services: [system],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
    }

    /// Builds the application and serves until SIGTERM or SIGINT, then shuts down gracefully
    /// (server first, then the graph system's pools).
    public static func run(
        settings: Settings, configuration: Configuration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let app = try await makeApplication(settings: settings, configuration: configuration, logger: logger, onServerRunning: onServerRunning)
        try await app.runService()
    }

    static func makeRouter(state: ServerState) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        router.get("healthz") { _, context in
            do {
                try await state.controlPlane.query("SELECT 1", logger: context.logger)
                return JSONBody.raw(#"{"status":"ok"}"#)
            } catch {
                throw APIError(.serviceUnavailable, "Database unavailable")
            }
        }
        router.get("openapi.json") { _, _ in JSONBody.raw(OpenAPIDocument.json) }
        let graphs = router.group("api/v1/graphs").add(middleware: AuthMiddleware(state: state))
        GraphRoutes(state: state).register(on: graphs)
        GraphDataRoutes(state: state).register(on: graphs)
        return router
    }
}
