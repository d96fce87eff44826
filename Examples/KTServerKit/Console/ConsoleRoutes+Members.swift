import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import NIOCore

/// Console pages: a graph's members (graph admins).
extension ConsoleRoutes {
    // MARK: Members

    @Sendable func addMember(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        _ = try requireCSRF(form, context)
        let slug = try context.parameters.require("slug")
        let graph = try await state.graph(slug: slug, permission: .manageMembers, context: context)
        let role = GraphRole(rawValue: form.text("role") ?? "reader")
        guard [.reader, .writer, .admin].contains(role) else {
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .unprocessableContent, memberError: "Choose a role.")
        }
        let who = form.text("user") ?? ""
        let users = state.users(context.logger)
        var user: User?
        if let id = UUID(uuidString: who) {
            user = try await users.user(id: id)
        } else if who.contains("@") {
            user = try await users.user(email: who)
        }
        guard let user else {
            return try await graphPage(
                request, context: context, slug: slug, error: nil, status: .unprocessableContent,
                memberError: "No user has that e-mail address or id.")
        }
        try await state.graphs(context.logger).addMember(graphID: graph.id, userID: user.id, role: role)
        return ConsolePage.redirect("/graphs/\(slug)?done=member-added")
    }

    @Sendable func changeRole(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await memberChange(
            request, context: context, done: "role-changed",
            lastAdmin: "A graph keeps at least one admin: make another member admin first."
        ) { form, graph, userID, repository in
            let role = GraphRole(rawValue: form.text("role") ?? "")
            guard [.reader, .writer, .admin].contains(role) else { throw APIError(.unprocessableContent, "Choose a role.") }
            return try await repository.changeMemberRole(graphID: graph.id, userID: userID, role: role) != nil
        }
    }

    @Sendable func removeMember(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await memberChange(
            request, context: context, done: "member-removed",
            lastAdmin: "The last admin of a graph cannot be removed: make another member admin first."
        ) { _, graph, userID, repository in
            try await repository.removeMemberKeepingAnAdmin(graphID: graph.id, userID: userID)
        }
    }

    /// A change to one member (graph admins): `change` returns whether the member existed. The
    /// last-admin rule and invalid input are shown on the graph's page; success redirects to it.
    func memberChange(
        _ request: Request, context: APIRequestContext, done: String, lastAdmin: String,
        _ change: (ConsoleForm, Graph, UUID, GraphRepository) async throws -> Bool
    ) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        _ = try requireCSRF(form, context)
        let slug = try context.parameters.require("slug")
        let graph = try await state.graph(slug: slug, permission: .manageMembers, context: context)
        guard let userID = UUID(uuidString: try context.parameters.require("user_id")) else { throw APIError(.notFound, "Member not found") }
        do {
            guard try await change(form, graph, userID, state.graphs(context.logger)) else { throw APIError(.notFound, "Member not found") }
        } catch let error as KTProvisionError where error.code == .lastAdmin {
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .conflict, memberError: lastAdmin)
        } catch let error as APIError where error.status == .unprocessableContent {
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .unprocessableContent, memberError: error.detail)
        }
        return ConsolePage.redirect("/graphs/\(slug)?done=\(done)")
    }
}
