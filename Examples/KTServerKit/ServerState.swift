import Foundation
import KTConfig
import KTDB
import KTProvision
import Logging
import HTTPTypes
import Hummingbird

/// What every route shares: settings, the system pools, the control plane, the resolver and the provisioner.
final class ServerState: Sendable {
    let settings: Settings
    let graphPool: PostgresConnectionPool
    let writePool: PostgresConnectionPool
    let controlPlane: DatabaseSession
    let resolver: GraphSessionResolver
    let provisioner: GraphProvisioner
    let logger: Logger

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        graphPool = PostgresConnectionPool(
            configuration: .init(
                connection: .init(url: settings.databaseURL, applicationName: "kt-api", defaultSSLMode: settings.dbSSLMode),
                pool: settings.graphPool, label: "graph-db"),
            backgroundLogger: logger)
        writePool = PostgresConnectionPool(
            configuration: .init(
                connection: .init(url: settings.writeDatabaseURL, applicationName: "kt-api", defaultSSLMode: settings.effectiveWriteSSLMode,
                                  preparedStatements: .disabled),
                pool: settings.writePool, label: "write-db"),
            backgroundLogger: logger)
        controlPlane = DatabaseSession(pool: graphPool)
        resolver = GraphSessionResolver(
            settings: settings, controlPlane: controlPlane, systemGraphPool: graphPool, systemWritePool: writePool, logger: logger)
        provisioner = GraphProvisioner(settings: settings, controlPlane: controlPlane, logger: logger)
    }

    func graphs(_ logger: Logger) -> GraphRepository { GraphRepository(controlPlane, logger: logger) }
    func users(_ logger: Logger) -> UserRepository { UserRepository(controlPlane, logger: logger) }
}

/// What a route needs on a graph.
enum GraphPermission {
    case read, manageMetadata, manageMembers
}

extension ServerState {
    /// The graph `slug` if the caller may do `permission` on it (the original's `_require_graph_access`):
    /// 404 when missing or deleted; 403 when the token excludes it, when the caller is not a
    /// member (non-default graphs) or lacks the role. Superusers may do everything; on the
    /// default graph others may only read.
    func graph(slug: String, permission: GraphPermission, context: APIRequestContext) async throws -> Graph {
        let auth = try context.requireAuth()
        guard let graph = try await graphs(context.logger).graph(slug: slug), graph.status != .deleted else {
            throw APIError.graphNotFound
        }
        guard auth.tokenAllows(slug: slug) else { throw APIError(.forbidden, "This token does not grant access to this graph") }
        if auth.user.isSuperuser { return graph }
        if graph.isDefault {
            guard permission == .read else { throw APIError.forbidden }
            return graph
        }
        guard let role = try await graphs(context.logger).memberRole(graphID: graph.id, userID: auth.user.id) else {
            throw APIError(.forbidden, "Not a member of this graph")
        }
        if permission != .read, role != .admin { throw APIError.forbidden }
        return graph
    }

    /// 403 unless the caller is a superuser (`system:manage_graphs`).
    func requireSuperuser(_ context: APIRequestContext) throws {
        guard try context.requireAuth().user.isSuperuser else { throw APIError.forbidden }
    }

    /// Builds `GraphResponse`s: member counts in one query, connection names in one query,
    /// node counts for active graphs at most five at a time (a failure counts 0).
    func responses(for graphs: [Graph], logger: Logger) async throws -> [GraphResponse] {
        let repository = self.graphs(logger)
        let counts = try await repository.memberCounts(graphIDs: graphs.map(\.id))
        var names: [UUID: String] = [:]
        if graphs.contains(where: { $0.databaseConnectionID != nil }) {
            for connection in try await repository.listDatabaseConnections() { names[connection.id] = connection.name }
        }
        let nodeCounts = await nodeCounts(for: graphs.filter { $0.status == .active }, logger: logger)
        return graphs.map { graph in
            GraphResponse(
                graph: graph, databaseConnectionName: graph.databaseConnectionID.flatMap { names[$0] },
                memberCount: counts[graph.id] ?? 0, nodeCount: nodeCounts[graph.id] ?? 0)
        }
    }

    func response(for graph: Graph, logger: Logger) async throws -> GraphResponse {
        try await responses(for: [graph], logger: logger)[0]
    }

    private func nodeCounts(for graphs: [Graph], logger: Logger) async -> [UUID: Int] {
        await withTaskGroup(of: (UUID, Int).self) { group in
            var pending = graphs[...]
            var counts: [UUID: Int] = [:]
            func startNext() {
                guard let graph = pending.popFirst() else { return }
                group.addTask { (graph.id, await self.nodeCount(graph, logger: logger)) }
            }
            for _ in 0..<5 { startNext() }
            while let (id, count) = await group.next() {
                counts[id] = count
                startNext()
            }
            return counts
        }
    }

    private func nodeCount(_ graph: Graph, logger: Logger) async -> Int {
        do {
            let sessions = try await resolver.resolve(graphID: graph.id)
            let result = try await sessions.graphSession.query("SELECT count(*) FROM nodes", logger: logger)
            return try result.rows.first?.decode(0, as: Int.self) ?? 0
        } catch {
            logger.warning("node count failed", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(error)"])
            return 0
        }
    }
}
