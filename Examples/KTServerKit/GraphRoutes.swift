import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTProvision
import Logging

/// The routes under `/api/v1/graphs` (inventory §6.2), all behind ``AuthMiddleware``.
struct GraphRoutes {
    let state: ServerState

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get(use: list)
        group.post(use: create)
        // Constant segments are declared before `{slug}` and the trie router prefers them, so
        // `/database-connections` is never captured as a slug.
        group.get("database-connections", use: listConnections)
        group.post("database-connections", use: createConnection)
        group.get("{slug}", use: show)
        group.put("{slug}", use: update)
        group.delete("{slug}", use: delete)
        group.post("{slug}/retry-provision", use: retry)
        group.post("{slug}/move", use: move)
        group.get("{slug}/status", use: status)
        group.get("{slug}/members", use: members)
        group.post("{slug}/members", use: addMember)
        group.put("{slug}/members/{user_id}", use: changeMemberRole)
        group.delete("{slug}/members/{user_id}", use: removeMember)
    }

    // MARK: Graphs

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let auth = try context.requireAuth()
        var graphs = try await state.graphs(context.logger).listAccessible(userID: auth.user.id, isSuperuser: auth.user.isSuperuser)
        if let slugs = auth.graphSlugs { graphs.removeAll { !slugs.contains($0.slug) } }
        return JSONBody.response(writing: try await state.responses(for: graphs, logger: context.logger))
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        try state.requireSuperuser(context)
        let body = try await JSONBody.decode(CreateGraphRequest.self, from: request)
        try body.validate()
        let graph: Graph
        do {
            graph = try await state.createGraph(body, creator: try context.requireAuth().user.id, logger: context.logger)
        } catch is ProvisioningFailed {
            throw APIError(.internalServerError, "Graph provisioning failed")
        }
        return JSONBody.response(writing: try await state.response(for: graph, logger: context.logger), status: .created)
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .read, context: context)
        return JSONBody.response(writing: try await state.response(for: graph, logger: context.logger))
    }

    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .manageMetadata, context: context)
        let body = try await JSONBody.decode(UpdateGraphRequest.self, from: request)
        try body.validate()
        let togglesChange =
            (body.contributeToPublic.map { $0 != graph.contributeToPublic } ?? false)
            || (body.usePublicCache.map { $0 != graph.usePublicCache } ?? false)
        if graph.isDefault, body.contributeToPublic != nil || body.usePublicCache != nil {
            throw APIError(.badRequest, "The public cache toggles of the default graph cannot be changed")
        }
        guard
            let updated = try await state.graphs(context.logger).update(
                id: graph.id, name: body.name, description: body.description,
                contributeToPublic: body.contributeToPublic, usePublicCache: body.usePublicCache)
        else { throw APIError.graphNotFound }
        if togglesChange { await state.system.invalidate(graphID: graph.id) }
        return JSONBody.response(writing: try await state.response(for: updated, logger: context.logger))
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let hard: Bool
        switch request.uri.queryParameters.get("hard")?.lowercased() {
        case nil, "false", "0": hard = false
        case "true", "1": hard = true
        default: throw APIError(.unprocessableContent, "hard must be true or false")
        }
        _ = try await state.graph(slug: try context.parameters.require("slug"), permission: .administer, context: context, includingDeleted: hard)
        try await state.deleteGraph(slug: try context.parameters.require("slug"), hard: hard, logger: context.logger)
        return Response(status: .noContent)
    }

    /// Where the graph lives, its schemas against head, its sync lag and dead letters (superuser).
    @Sendable func status(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .administer, context: context)
        return JSONBody.response(writing: GraphStatusResponse(report: await state.system.status(of: graph, logger: context.logger)))
    }

    @Sendable func retry(_ request: Request, context: APIRequestContext) async throws -> Response {
        _ = try await state.graph(slug: try context.parameters.require("slug"), permission: .administer, context: context)
        do {
            let retried = try await state.retryGraph(slug: try context.parameters.require("slug"), logger: context.logger)
            return JSONBody.response(writing: try await state.response(for: retried, logger: context.logger))
        } catch is ProvisioningFailed {
            throw APIError(.internalServerError, "Provisioning retry failed")
        }
    }

    /// Moves the graph to another database pair (superuser); answers when the move is done
    /// (meanwhile the graph reads `moving`).
    @Sendable func move(_ request: Request, context: APIRequestContext) async throws -> Response {
        let slug = try context.parameters.require("slug")
        _ = try await state.graph(slug: slug, permission: .administer, context: context)
        try state.requireSuperuser(context)
        let body = try await JSONBody.decode(MoveGraphRequest.self, from: request)
        try body.validate()
        let moved = try await state.moveGraph(slug: slug, to: body.databaseConnectionConfigKey, logger: context.logger)
        return JSONBody.response(writing: try await state.response(for: moved, logger: context.logger))
    }

    // MARK: Database connections

    @Sendable func listConnections(_ request: Request, context: APIRequestContext) async throws -> Response {
        try state.requireSuperuser(context)
        var result = [DatabaseConnectionResponse(id: nil, name: GraphDatabases.defaultKey, configKey: GraphDatabases.defaultKey, createdAt: nil)]
        result += try await state.graphs(context.logger).listDatabaseConnections().map(DatabaseConnectionResponse.init)
        return try JSONBody.response(result)
    }

    @Sendable func createConnection(_ request: Request, context: APIRequestContext) async throws -> Response {
        try state.requireSuperuser(context)
        let body = try await JSONBody.decode(CreateDatabaseConnectionRequest.self, from: request)
        try body.validate()
        let record = try await state.createDatabaseConnection(name: body.name, configKey: body.configKey, logger: context.logger)
        return try JSONBody.response(DatabaseConnectionResponse(record), status: .created)
    }

    // MARK: Members

    @Sendable func members(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .read, context: context)
        let members = try await state.graphs(context.logger).memberDetails(graphID: graph.id)
        return try JSONBody.response(members.map(GraphMemberResponse.init))
    }

    @Sendable func addMember(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .manageMembers, context: context)
        let body = try await JSONBody.decode(AddMemberRequest.self, from: request)
        let role = try parseRole(body.role)
        guard let userID = UUID(uuidString: body.userID) else { throw APIError(.badRequest, "Invalid user id") }
        // The graph is the resource addressed; a user id in the body that names no one is invalid input.
        guard try await state.users(context.logger).user(id: userID) != nil else { throw APIError(.unprocessableContent, "No user with this id") }
        let repository = state.graphs(context.logger)
        try await repository.addMember(graphID: graph.id, userID: userID, role: role)
        return try JSONBody.response(try await detail(graphID: graph.id, userID: userID, repository: repository), status: .created)
    }

    @Sendable func changeMemberRole(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .manageMembers, context: context)
        let userID = try memberID(context)
        let role = try parseRole(try await JSONBody.decode(UpdateMemberRoleRequest.self, from: request).role)
        let repository = state.graphs(context.logger)
        guard try await repository.changeMemberRole(graphID: graph.id, userID: userID, role: role) != nil else {
            throw APIError(.notFound, "Member not found")
        }
        return try JSONBody.response(try await detail(graphID: graph.id, userID: userID, repository: repository))
    }

    @Sendable func removeMember(_ request: Request, context: APIRequestContext) async throws -> Response {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .manageMembers, context: context)
        let userID = try memberID(context)
        guard try await state.graphs(context.logger).removeMemberKeepingAnAdmin(graphID: graph.id, userID: userID) else {
            throw APIError(.notFound, "Member not found")
        }
        return Response(status: .noContent)
    }

    private func memberID(_ context: APIRequestContext) throws -> UUID {
        guard let id = UUID(uuidString: try context.parameters.require("user_id")) else { throw APIError(.badRequest, "Invalid user id") }
        return id
    }

    private func detail(graphID: UUID, userID: UUID, repository: GraphRepository) async throws -> GraphMemberResponse {
        guard let detail = try await repository.memberDetails(graphID: graphID).first(where: { $0.member.userID == userID }) else {
            throw APIError(.notFound, "Member not found")
        }
        return GraphMemberResponse(detail: detail)
    }
}
