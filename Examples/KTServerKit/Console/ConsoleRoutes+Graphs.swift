import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import NIOCore

/// Console pages: the graph list, the creation form with the Database picker, a graph's page, retry and delete.
extension ConsoleRoutes {
    // MARK: Graphs

    @Sendable func graphs(_ request: Request, context: APIRequestContext) async throws -> Response {
        let session = try session(context)
        let auth = session.auth
        var graphs = try await state.graphs(context.logger).listAccessible(userID: auth.user.id, isSuperuser: auth.user.isSuperuser)
        if let slugs = auth.graphSlugs { graphs.removeAll { !slugs.contains($0.slug) } }
        let responses = try await state.responses(for: graphs, logger: context.logger)
        let filter = request.uri.queryParameters.get("database").flatMap { $0.isEmpty ? nil : $0 }
        // The filter offers the databases of the graphs listed (and `default`).
        var databases: [(key: String, name: String)] = [(GraphDatabases.defaultKey, GraphDatabases.defaultKey)]
        for response in responses {
            if let name = response.databaseConnectionName, !databases.contains(where: { $0.name == name }) { databases.append((name, name)) }
        }
        let shown = responses.filter { response in
            guard let filter else { return true }
            return (response.databaseConnectionName ?? GraphDatabases.defaultKey) == filter
        }
        let values: [String: Any] = [
            "superuser": auth.user.isSuperuser,
            "filtered": filter != nil,
            "hasGraphs": !shown.isEmpty,
            "databases": databases.map { ["key": $0.key, "name": $0.name, "selected": $0.key == filter] as [String: Any] },
            "graphs": shown.map { response -> [String: Any] in
                [
                    "name": response.graph.name, "slug": response.graph.slug, "status": response.graph.status.rawValue,
                    "database": response.databaseConnectionName ?? GraphDatabases.defaultKey, "nodeCount": response.nodeCount,
                ]
            },
        ]
        return ConsolePage.render("graphs", title: "Graphs", values: values, session: session, notice: notice(request))
    }

    @Sendable func newGraphPage(_ request: Request, context: APIRequestContext) async throws -> Response {
        let session = try session(context)
        try state.requireSuperuser(context)
        return await newGraphForm(session: session, fields: [:], errors: [:], context: context, status: .ok)
    }

    /// The creation form: `default` first and selected unless another was chosen, then the
    /// connections by name. When the connections cannot be read, it says so and cannot be
    /// submitted (never a silent fall back to the system database).
    func newGraphForm(
        session: ConsoleSession, fields: [String: String], errors: [String: String], context: APIRequestContext,
        status: HTTPResponse.Status
    ) async -> Response {
        var values: [String: Any] = ["csrf": session.csrfToken]
        for (key, value) in fields { values[key] = value }
        for (key, value) in errors { values[key + "Error"] = value }
        let chosen = fields["database"] ?? GraphDatabases.defaultKey
        var options: [[String: Any]] = [["key": GraphDatabases.defaultKey, "name": GraphDatabases.defaultKey, "selected": chosen == GraphDatabases.defaultKey]]
        do {
            try await ConsoleFaults.connectionsList()
            for connection in try await state.graphs(context.logger).listDatabaseConnections() {
                options.append(["key": connection.configKey, "name": connection.name, "selected": connection.configKey == chosen])
            }
        } catch {
            context.logger.debug("console: database connections unavailable", metadata: ["kt.error": "\(error)"])
            values["connectionsError"] = "The list of databases could not be loaded, so a graph cannot be created now. Reload the page to try again."
        }
        values["databases"] = options
        return ConsolePage.render("new-graph", title: "New graph", values: values, session: session, status: status)
    }

    @Sendable func createGraph(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        let session = try requireCSRF(form, context)
        try state.requireSuperuser(context)
        let slug = form.text("slug") ?? "", name = form.text("name") ?? "", description = form.text("description")
        let database = form.text("database_connection_config_key") ?? GraphDatabases.defaultKey
        let fields = ["slug": slug, "name": name, "description": description ?? "", "database": database]
        var errors: [String: String] = [:]
        if slug == GraphDatabases.defaultKey {
            errors["slug"] = "The slug 'default' is reserved."
        } else if (try? GraphSlug(slug)) == nil {
            errors["slug"] = "Use 3 to 57 lower-case letters, digits or underscores, starting and ending with a letter or digit."
        }
        if (try? FieldLimit.name.check(name)) == nil { errors["name"] = "A name has 1 to 200 characters." }
        if let description, (try? FieldLimit.description.check(description)) == nil { errors["form"] = "The description is too long (at most 10,000 characters)." }
        guard errors.isEmpty else {
            return await newGraphForm(session: session, fields: fields, errors: errors, context: context, status: .unprocessableContent)
        }
        let body = CreateGraphRequest(
            slug: slug, name: name, description: description,
            databaseConnectionConfigKey: GraphDatabases.isSystemKey(database) ? nil : database)
        do {
            let graph = try await state.createGraph(body, creator: session.auth.user.id, logger: context.logger)
            return ConsolePage.redirect("/graphs/\(graph.slug)")
        } catch is ProvisioningFailed {
            // The graph exists, in error: its page shows why and offers Retry.
            return ConsolePage.redirect("/graphs/\(slug)")
        } catch let error as APIError where error.status == .conflict {
            errors["slug"] = "A graph with this slug already exists."
        } catch let error as APIError where error.status == .badRequest {
            errors["database"] = "This database is not available."
        }
        return await newGraphForm(session: session, fields: fields, errors: errors, context: context, status: .unprocessableContent)
    }

    @Sendable func graph(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await graphPage(request, context: context, slug: try context.parameters.require("slug"), error: nil, status: .ok)
    }

    /// The graph's page; `error` is shown at the top (and with members, next to them).
    func graphPage(
        _ request: Request, context: APIRequestContext, slug: String, error: String?, status: HTTPResponse.Status,
        memberError: String? = nil
    ) async throws -> Response {
        let session = try session(context)
        let graph = try await state.graph(slug: slug, permission: .read, context: context)
        let response = try await state.response(for: graph, logger: context.logger)
        let user = session.auth.user
        let role = user.isSuperuser ? GraphRole.admin : try await state.graphs(context.logger).memberRole(graphID: graph.id, userID: user.id)
        let manageMembers = !graph.isDefault && role == .admin
        var values: [String: Any] = [
            "csrf": session.csrfToken, "name": graph.name, "slug": graph.slug, "status": graph.status.rawValue,
            "database": response.databaseConnectionName ?? GraphDatabases.defaultKey, "schema": graph.schemaName,
            "created": graph.createdAt.consoleText, "createdISO": ISO8601DateFormatter().string(from: graph.createdAt),
            "nodeCount": response.nodeCount, "active": graph.status.isServing, "moving": graph.status == .moving, "moveTarget": graph.moveTarget ?? "",
            "provisioning": graph.status == .provisioning, "steps": graph.provisioningSteps,
            "failed": graph.status == .error, "canRetry": user.isSuperuser && graph.status == .error,
            "reason": graph.provisioningError ?? "The reason was not recorded.",
            "showMembers": !graph.isDefault, "manageMembers": manageMembers,
            "canDelete": user.isSuperuser && !graph.isDefault,
        ]
        if let description = graph.description { values["description"] = description }
        if let schemaError = graph.schemaError { values["schemaError"] = schemaError }
        // An active graph with a recorded error: a move that was rolled back.
        if graph.status == .active, let reason = graph.provisioningError { values["moveError"] = reason }
        if let error { values["error"] = error }
        if let memberError { values["memberError"] = memberError }
        if !graph.isDefault {
            values["members"] = try await state.graphs(context.logger).memberDetails(graphID: graph.id).map { detail -> [String: Any] in
                [
                    "email": detail.email, "userID": detail.member.userID.uuidString.lowercased(), "role": detail.member.role.rawValue,
                    "roles": [GraphRole.reader, .writer, .admin].map { ["value": $0.rawValue, "selected": $0 == detail.member.role] as [String: Any] },
                ]
            }
        }
        return ConsolePage.render(
            "graph", title: graph.name, values: values, session: session, status: status,
            refresh: graph.status == .provisioning || graph.status == .moving ? 2 : nil, notice: notice(request))
    }

    @Sendable func retry(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        _ = try requireCSRF(form, context)
        let slug = try context.parameters.require("slug")
        _ = try await state.graph(slug: slug, permission: .administer, context: context)
        do {
            _ = try await state.retryGraph(slug: slug, logger: context.logger)
            return ConsolePage.redirect("/graphs/\(slug)?done=retried")
        } catch is ProvisioningFailed {
            return ConsolePage.redirect("/graphs/\(slug)")
        }
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        _ = try requireCSRF(form, context)
        let slug = try context.parameters.require("slug")
        _ = try await state.graph(slug: slug, permission: .administer, context: context)
        let hard = form["hard"] == "1"
        if hard, form.text("confirm") != slug {
            return try await graphPage(
                request, context: context, slug: slug,
                error: "To delete permanently, type the slug '\(slug)' exactly.", status: .unprocessableContent)
        }
        try await state.deleteGraph(slug: slug, hard: hard, logger: context.logger)
        return ConsolePage.redirect(hard ? "/graphs?done=deleted-permanently" : "/graphs?done=deleted")
    }
}
