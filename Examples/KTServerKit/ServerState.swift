import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTProvision
import Logging

/// What every route shares: the process's ``GraphSystem`` (settings, pools per database, the
/// control plane, the resolver and the provisioner).
final class ServerState: Sendable {
    let system: GraphSystem
    let logger: Logger
    /// Bearer tokens, cached and bounded (see ``TokenAuthenticator``).
    let authenticator: TokenAuthenticator
    /// Readiness, refreshed in the background.
    let readiness: ReadinessMonitor

    init(system: GraphSystem, readinessInterval: Duration = .seconds(5), logger: Logger) {
        self.system = system
        self.logger = logger
        self.authenticator = TokenAuthenticator(controlPlane: system.controlPlane)
        self.readiness = ReadinessMonitor(system: system, interval: readinessInterval, logger: logger)
    }

    var settings: Settings { system.settings }
    var controlPlane: DatabaseSession { system.controlPlane }
    var provisioner: GraphProvisioner { system.provisioner }

    func graphs(_ logger: Logger) -> GraphRepository { GraphRepository(controlPlane, logger: logger) }
    func users(_ logger: Logger) -> UserRepository { UserRepository(controlPlane, logger: logger) }
}

/// What a route needs on a graph.
enum GraphPermission {
    /// Read it (members; anyone on the default graph).
    case read
    /// Change its name, description and toggles (graph admins).
    case manageMetadata
    /// Add, change and remove members (graph admins).
    case manageMembers
    /// Delete, retry, status (superusers).
    case administer
}

extension ServerState {
    /// The graph `slug` if the caller may do `permission` on it (the original's `_require_graph_access`,
    /// except that a graph the caller may not see is never told apart from a missing one):
    /// 404 when missing or deleted, when the token excludes it, or for a non-member (non-default
    /// graphs); 403 when the caller sees it but lacks the role. Superusers may do everything
    /// their token allows; on the default graph others may only read.
    /// - Parameter includingDeleted: a `deleted` graph is found too (to resume a hard delete).
    func graph(slug: String, permission: GraphPermission, context: APIRequestContext, includingDeleted: Bool = false) async throws -> Graph {
        let auth = try context.requireAuth()
        guard auth.tokenAllows(slug: slug), let graph = try await graphs(context.logger).graph(slug: slug), includingDeleted || graph.status != .deleted else {
            throw APIError.graphNotFound
        }
        if auth.user.isSuperuser { return graph }
        if graph.isDefault {
            guard permission == .read else { throw APIError.forbidden }
            return graph
        }
        guard let role = try await graphs(context.logger).memberRole(graphID: graph.id, userID: auth.user.id) else {
            throw APIError.graphNotFound
        }
        if permission != .read, role != .admin || permission == .administer { throw APIError.forbidden }
        return graph
    }

    /// For routes that are not about one graph (create a graph, database connections): 403
    /// unless the caller is a superuser (`system:manage_graphs`) with a token not limited to
    /// some graphs.
    func requireSuperuser(_ context: APIRequestContext) throws {
        let auth = try context.requireAuth()
        guard auth.user.isSuperuser else { throw APIError.forbidden }
        guard auth.graphSlugs == nil else { throw APIError(.forbidden, "This token is limited to some graphs and cannot be used here") }
    }

    /// Builds `GraphResponse`s: member counts in one query, connection names in one query, node
    /// counts estimated from statistics with one query per graph-db (not per graph); a single
    /// graph's count is exact.
    func responses(for graphs: [Graph], logger: Logger, exactNodeCounts: Bool = false) async throws -> [GraphResponse] {
        let repository = self.graphs(logger)
        let counts = try await repository.memberCounts(graphIDs: graphs.map(\.id))
        // Read once, for the names and the node counts.
        let connections = graphs.contains(where: { $0.databaseConnectionID != nil }) ? try await repository.listDatabaseConnections() : []
        let names = Dictionary(connections.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        var nodeCounts: [UUID: Int] = [:]
        if exactNodeCounts {
            for graph in graphs where graph.status.isServing { nodeCounts[graph.id] = try? await system.nodeCount(of: graph, logger: logger) }
        } else {
            nodeCounts = await system.estimatedNodeCounts(for: graphs, connections: connections, logger: logger)
        }
        return graphs.map { graph in
            GraphResponse(
                graph: graph, databaseConnectionName: graph.databaseConnectionID.flatMap { names[$0] },
                memberCount: counts[graph.id] ?? 0, nodeCount: nodeCounts[graph.id] ?? 0)
        }
    }

    func response(for graph: Graph, logger: Logger) async throws -> GraphResponse {
        try await responses(for: [graph], logger: logger, exactNodeCounts: true)[0]
    }
}
