import Foundation
import HTTPTypes
public import Hummingbird
public import KTConfig
import KTDB
import KTProvision
import KTQdrant
public import Logging
import Metrics
import NIOCore
public import Prometheus
import ServiceLifecycle

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
        /// The registry `GET /metrics` writes in Prometheus text format; `nil` (the default)
        /// leaves the route unavailable (404). The metrics system must be bootstrapped with a
        /// `PrometheusMetricsFactory` on this registry for the SDK's and HTTP metrics to reach it
        /// (``run(settings:configuration:logger:onServerRunning:)`` does both).
        public var metrics: PrometheusCollectorRegistry?
        /// How often the tokens' `last_used_at` is written (default one minute).
        public var tokenUseInterval: Duration
        /// How often readiness is checked in the background (default 5 s).
        public var readinessInterval: Duration

        /// Creates a configuration.
        public init(
            host: String = "127.0.0.1", port: Int = 8080, metrics: PrometheusCollectorRegistry? = nil,
            tokenUseInterval: Duration = .seconds(60), readinessInterval: Duration = .seconds(5)
        ) {
            self.host = host
            self.port = port
            self.metrics = metrics
            self.tokenUseInterval = tokenUseInterval
            self.readinessInterval = readinessInterval
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
        logger.debug(
            "startup prepared",
            metadata: [
                "kt.migrations_applied": "\(report.appliedMigrations)", "kt.graphs_migrated": "\(report.migratedGraphs.count)",
                "kt.graphs_recovered": "\(report.recoveredGraphs)",
            ])
        if !report.movingGraphs.isEmpty {
            // A move in another process, or one whose process stopped: `kt graphs move --resume`.
            logger.warning(
                "some graphs are moving between database pairs; they are served from their source",
                metadata: [
                    "kt.graphs_moving": "\(report.movingGraphs)"
                ])
        }
        if !report.failedGraphs.isEmpty {
            // Not normal operation: those graphs answer 503 with the reason until a migration succeeds.
            logger.warning(
                "some graphs could not be migrated; they are not served",
                metadata: [
                    "kt.graphs_failed": "\(report.failedGraphs.map(\.slug))"
                ])
        }
        do {
            let qdrant = try QdrantClient.shared(configuration: settings.qdrant, logger: logger)
            try await qdrant.ensureGraphCollections(.defaultGraph, vectorSize: settings.embeddingDimensions)
        } catch {
            logger.warning("could not ensure the default graph's Qdrant collections", metadata: ["kt.error": "\(error)"])
        }
        let state = ServerState(system: system, readinessInterval: configuration.readinessInterval, logger: logger)
        let tokenUse = TokenUseRecorder(authenticator: state.authenticator, controlPlane: system.controlPlane, interval: configuration.tokenUseInterval, logger: logger)
        return Application(
            router: makeRouter(state: state, metrics: configuration.metrics),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kt-server"),
            services: [system, tokenUse, state.readiness],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
    }

    /// Bootstraps swift-metrics with Prometheus (once per process; names and labels made valid
    /// for Prometheus), builds the application with `GET /metrics`, and serves until SIGTERM or
    /// SIGINT, then shuts down gracefully (server first, then the graph system's pools).
    public static func run(
        settings: Settings, configuration: Configuration, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        var configuration = configuration
        if configuration.metrics == nil { configuration.metrics = bootstrapPrometheus() }
        let app = try await makeApplication(settings: settings, configuration: configuration, logger: logger, onServerRunning: onServerRunning)
        try await app.runService()
    }

    /// Bootstraps the process's metrics system with a Prometheus factory on a new registry and
    /// returns the registry. Call at most once per process.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, dimensions in
            (prometheusName(name), dimensions.map { (prometheusName($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// `name` with every character Prometheus does not allow in a name replaced by `_`.
    static func prometheusName(_ name: String) -> String {
        String(
            name.unicodeScalars.map { scalar in
                ("0"..."9").contains(scalar) || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" ? Character(scalar) : "_"
            })
    }

    static func makeRouter(state: ServerState, metrics: PrometheusCollectorRegistry? = nil) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        // Outermost, so it records the status the client gets (after ErrorMiddleware).
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(MethodNotAllowedMiddleware())
        // Liveness touches nothing; readiness names what is down of every database and Qdrant
        // the process serves, as of the last background check (no query per request);
        // /healthz is readiness.
        router.get("health/live") { _, _ in JSONBody.raw(#"{"status":"ok"}"#) }
        @Sendable func ready(_ request: Request, context: APIRequestContext) async throws -> Response {
            let down = await state.readiness.unavailable()
            guard down.isEmpty else {
                var json = JSONWriter()
                json.object { json in
                    json.key("detail"); json.string("Unavailable: \(down.joined(separator: ", "))")
                    json.key("down"); json.array { json in for name in down { json.string(name) } }
                    json.key("status"); json.string("unavailable")
                }
                return Response(status: .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
            }
            return JSONBody.raw(#"{"status":"ok"}"#)
        }
        router.get("health/ready", use: ready)
        router.get("healthz", use: ready)
        router.get("metrics") { _, _ in
            guard let metrics else { throw APIError(.notFound, "Metrics are not enabled in this process") }
            var text: [UInt8] = []
            metrics.emit(into: &text)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.get("openapi.json") { _, _ in JSONBody.raw(OpenAPIDocument.json) }
        let graphs = router.group("api/v1/graphs").add(middleware: AuthMiddleware(state: state))
        GraphRoutes(state: state).register(on: graphs)
        GraphDataRoutes(state: state).register(on: graphs)
        ConsoleRoutes(state: state).register(on: router)
        return router
    }
}
