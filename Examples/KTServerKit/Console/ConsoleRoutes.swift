import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import NIOCore

/// The web console: server-rendered pages over the same SDK calls as the JSON API, signed in
/// with an API token (the session cookie never holds it). Every page works without
/// JavaScript: forms POST, then redirect.
struct ConsoleRoutes {
    let state: ServerState

    func register(on router: Router<APIRequestContext>) {
        router.get("console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet)))
        }
        let open = router.group().add(middleware: ConsoleErrorMiddleware()).add(middleware: ConsoleSessionMiddleware(state: state, required: false))
        open.get("/") { _, context in ConsolePage.redirect(context.consoleSession == nil ? "/login" : "/graphs") }
        open.get("login", use: loginPage)
        open.post("login", use: login)
        open.post("logout", use: logout)
        let pages = router.group().add(middleware: ConsoleErrorMiddleware()).add(middleware: ConsoleSessionMiddleware(state: state, required: true))
        pages.get("graphs", use: graphs)
        pages.get("graphs/new", use: newGraphPage)
        pages.post("graphs/new", use: createGraph)
        pages.get("graphs/{slug}", use: graph)
        pages.post("graphs/{slug}/retry", use: retry)
        pages.post("graphs/{slug}/delete", use: delete)
        pages.post("graphs/{slug}/members", use: addMember)
        pages.post("graphs/{slug}/members/{user_id}/role", use: changeRole)
        pages.post("graphs/{slug}/members/{user_id}/remove", use: removeMember)
        pages.get("graphs/{slug}/nodes", use: nodes)
        pages.get("graphs/{slug}/nodes/{node_id}", use: node)
        pages.get("database-connections", use: connections)
        pages.post("database-connections", use: createConnection)
    }

    // MARK: Sign-in

    @Sendable func loginPage(_ request: Request, context: APIRequestContext) async throws -> Response {
        if context.consoleSession != nil { return ConsolePage.redirect("/graphs") }
        return loginForm(error: nil, status: .ok)
    }

    /// The form with a fresh double-submit CSRF value (cookie and hidden field).
    private func loginForm(error: String?, status: HTTPResponse.Status) -> Response {
        let csrf = SecureToken.make()
        var values: [String: Any] = ["csrf": csrf]
        if let error { values["error"] = error }
        var response = ConsolePage.render("login", title: "Sign in", values: values, session: nil, status: status)
        response.setCookie(ConsoleCookie.make(ConsoleCookie.loginCSRF, value: csrf, maxAge: 3600))
        return response
    }

    @Sendable func login(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        guard let sent = form["csrf_token"], let expected = request.cookies[ConsoleCookie.loginCSRF]?.value, !expected.isEmpty,
              constantTimeEqual(sent, expected) else {
            return loginForm(error: "The form has expired. Please sign in again.", status: .forbidden)
        }
        guard let token = form.text("token"),
              let auth = try await state.authenticator.authenticate(token: token, logger: context.logger) else {
            return loginForm(error: "That API token is not valid.", status: .unauthorized)
        }
        let issued = try await ConsoleSessionRepository(state.controlPlane, logger: context.logger).create(for: auth, lifetime: consoleSessionLifetime)
        var response = ConsolePage.redirect("/graphs")
        response.setCookie(ConsoleCookie.make(ConsoleCookie.session, value: issued.id.revealedValue, maxAge: Int(consoleSessionLifetime.components.seconds)))
        response.setCookie(ConsoleCookie.clear(ConsoleCookie.loginCSRF))
        return response
    }

    @Sendable func logout(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        if context.consoleSession != nil {
            _ = try requireCSRF(form, context)
            if let id = request.cookies[ConsoleCookie.session]?.value {
                try await ConsoleSessionRepository(state.controlPlane, logger: context.logger).delete(id: id)
            }
        }
        var response = ConsolePage.redirect("/login")
        response.setCookie(ConsoleCookie.clear(ConsoleCookie.session))
        return response
    }

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
                ["name": response.graph.name, "slug": response.graph.slug, "status": response.graph.status.rawValue,
                 "database": response.databaseConnectionName ?? GraphDatabases.defaultKey, "nodeCount": response.nodeCount]
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
    private func newGraphForm(session: ConsoleSession, fields: [String: String], errors: [String: String], context: APIRequestContext,
                              status: HTTPResponse.Status) async -> Response {
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
        let body = CreateGraphRequest(slug: slug, name: name, description: description,
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
    private func graphPage(_ request: Request, context: APIRequestContext, slug: String, error: String?, status: HTTPResponse.Status,
                           memberError: String? = nil) async throws -> Response {
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
            "nodeCount": response.nodeCount, "active": graph.status == .active,
            "provisioning": graph.status == .provisioning, "steps": graph.provisioningSteps,
            "failed": graph.status == .error, "canRetry": user.isSuperuser && graph.status == .error,
            "reason": graph.provisioningError ?? "The reason was not recorded.",
            "showMembers": !graph.isDefault, "manageMembers": manageMembers,
            "canDelete": user.isSuperuser && !graph.isDefault,
        ]
        if let description = graph.description { values["description"] = description }
        if let schemaError = graph.schemaError { values["schemaError"] = schemaError }
        if let error { values["error"] = error }
        if let memberError { values["memberError"] = memberError }
        if !graph.isDefault {
            values["members"] = try await state.graphs(context.logger).memberDetails(graphID: graph.id).map { detail -> [String: Any] in
                ["email": detail.email, "userID": detail.member.userID.uuidString.lowercased(), "role": detail.member.role.rawValue,
                 "roles": [GraphRole.reader, .writer, .admin].map { ["value": $0.rawValue, "selected": $0 == detail.member.role] as [String: Any] }]
            }
        }
        return ConsolePage.render("graph", title: graph.name, values: values, session: session, status: status,
                                  refresh: graph.status == .provisioning ? 2 : nil, notice: notice(request))
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
            return try await graphPage(request, context: context, slug: slug,
                                       error: "To delete permanently, type the slug '\(slug)' exactly.", status: .unprocessableContent)
        }
        try await state.deleteGraph(slug: slug, hard: hard, logger: context.logger)
        return ConsolePage.redirect(hard ? "/graphs?done=deleted-permanently" : "/graphs?done=deleted")
    }

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
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .unprocessableContent,
                                       memberError: "No user has that e-mail address or id.")
        }
        try await state.graphs(context.logger).addMember(graphID: graph.id, userID: user.id, role: role)
        return ConsolePage.redirect("/graphs/\(slug)?done=member-added")
    }

    @Sendable func changeRole(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await memberChange(request, context: context, done: "role-changed",
                               lastAdmin: "A graph keeps at least one admin: make another member admin first.") { form, graph, userID, repository in
            let role = GraphRole(rawValue: form.text("role") ?? "")
            guard [.reader, .writer, .admin].contains(role) else { throw APIError(.unprocessableContent, "Choose a role.") }
            return try await repository.changeMemberRole(graphID: graph.id, userID: userID, role: role) != nil
        }
    }

    @Sendable func removeMember(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await memberChange(request, context: context, done: "member-removed",
                               lastAdmin: "The last admin of a graph cannot be removed: make another member admin first.") { _, graph, userID, repository in
            try await repository.removeMemberKeepingAnAdmin(graphID: graph.id, userID: userID)
        }
    }

    /// A change to one member (graph admins): `change` returns whether the member existed. The
    /// last-admin rule and invalid input are shown on the graph's page; success redirects to it.
    private func memberChange(
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
        } catch let error as KTDBError where error.code == .lastAdmin {
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .conflict, memberError: lastAdmin)
        } catch let error as APIError where error.status == .unprocessableContent {
            return try await graphPage(request, context: context, slug: slug, error: nil, status: .unprocessableContent, memberError: error.detail)
        }
        return ConsolePage.redirect("/graphs/\(slug)?done=\(done)")
    }

    // MARK: Nodes

    private func engine(_ slug: String, _ context: APIRequestContext) async throws -> (Graph, ReadGraphEngine) {
        let graph = try await state.graph(slug: slug, permission: .read, context: context)
        guard graph.status == .active else { throw APIError(.serviceUnavailable, "The graph is not active (status \(graph.status)).") }
        if let reason = graph.schemaError { throw APIError(.serviceUnavailable, "The graph's schemas are not migrated: \(reason)") }
        return (graph, try await state.system.readEngine(graphID: graph.id, logger: context.logger))
    }

    static let pageSize = 25

    @Sendable func nodes(_ request: Request, context: APIRequestContext) async throws -> Response {
        let session = try session(context)
        let slug = try context.parameters.require("slug")
        let (graph, engine) = try await engine(slug, context)
        let query = request.uri.queryParameters
        let search = query.get("search").map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        let page = max(1, min(Int(query.get("page") ?? "") ?? 1, 40_000))
        let offset = (page - 1) * Self.pageSize
        let nodes = try await engine.listNodes(offset: offset, limit: Self.pageSize, search: search, sort: .concept)
        let total = try await engine.countNodes(search: search)
        func link(_ page: Int) -> String {
            var components = URLComponents()
            components.path = "/graphs/\(slug)/nodes"
            components.queryItems = (search.map { [URLQueryItem(name: "search", value: $0)] } ?? []) + [URLQueryItem(name: "page", value: "\(page)")]
            return components.string ?? "/graphs/\(slug)/nodes"
        }
        var values: [String: Any] = [
            "slug": slug, "graphName": graph.name, "total": total, "hasNodes": !nodes.isEmpty,
            "range": nodes.isEmpty ? "0" : "\(offset + 1)–\(offset + nodes.count)",
            "nodes": nodes.map { node -> [String: Any] in
                ["id": node.id.uuidString.lowercased(), "concept": node.concept, "type": node.nodeType,
                 "facts": node.factCount, "edges": node.edgeCount, "children": node.childCount]
            },
        ]
        if let search { values["search"] = search }
        if page > 1 { values["previous"] = link(page - 1) }
        if offset + nodes.count < total { values["next"] = link(page + 1) }
        return ConsolePage.render("nodes", title: "Nodes of \(graph.name)", values: values, session: session)
    }

    @Sendable func node(_ request: Request, context: APIRequestContext) async throws -> Response {
        let session = try session(context)
        let slug = try context.parameters.require("slug")
        let (_, engine) = try await engine(slug, context)
        guard let id = UUID(uuidString: try context.parameters.require("node_id")), let node = try await engine.node(id: id) else {
            throw APIError(.notFound, "There is no such node in this graph.")
        }
        // The page shows at most `shown` of each (the counts say how many there are).
        let shown = 200
        let facts = try await engine.nodeFacts(of: id, offset: 0, limit: shown)
        let edges = try await engine.edges(of: id, direction: .both, offset: 0, limit: shown)
        let children = Array(try await engine.children(of: id).prefix(shown))
        let others = edges.map { $0.sourceID == id ? $0.targetID : $0.sourceID }
        let concepts = Dictionary(try await engine.nodes(ids: Array(Set(others))).map { ($0.id, $0.concept) }, uniquingKeysWith: { a, _ in a })
        var values: [String: Any] = [
            "slug": slug, "concept": node.concept, "type": node.nodeType, "updated": node.updatedAt.consoleText,
            "factCount": node.factCount, "edgeCount": node.edgeCount, "childCount": node.childCount,
            "has_facts": !facts.isEmpty, "has_edges": !edges.isEmpty, "has_children": !children.isEmpty,
            "facts": facts.map { ["content": $0.content, "type": $0.factType] },
            "edges": edges.map { edge -> [String: Any] in
                let other = edge.sourceID == id ? edge.targetID : edge.sourceID
                return ["relationship": edge.sourceID == id ? "→ \(edge.relationshipType)" : "← \(edge.relationshipType)",
                        "other": other.uuidString.lowercased(), "otherConcept": concepts[other] ?? other.uuidString.lowercased(),
                        "weight": String(format: "%.2f", edge.weight)]
            },
            "children": children.map { ["id": $0.id.uuidString.lowercased(), "concept": $0.concept] },
        ]
        if let definition = node.definition { values["definition"] = definition }
        if let parent = node.parentID { values["parent"] = parent.uuidString.lowercased() }
        return ConsolePage.render("node", title: node.concept, values: values, session: session)
    }

    // MARK: Database connections

    @Sendable func connections(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await connectionsPage(context: context, fields: [:], error: nil, status: .ok, notice: notice(request))
    }

    private func connectionsPage(context: APIRequestContext, fields: [String: String], error: String?, status: HTTPResponse.Status,
                                 notice: String?) async throws -> Response {
        let session = try session(context)
        try state.requireSuperuser(context)
        var rows: [[String: Any]] = [["name": GraphDatabases.defaultKey, "key": GraphDatabases.defaultKey, "created": "—"]]
        rows += try await state.graphs(context.logger).listDatabaseConnections().map {
            ["name": $0.name, "key": $0.configKey, "created": $0.createdAt.consoleText]
        }
        var values: [String: Any] = ["csrf": session.csrfToken, "connections": rows, "name": fields["name"] ?? "", "configKey": fields["config_key"] ?? ""]
        if let error { values["error"] = error }
        return ConsolePage.render("connections", title: "Databases", values: values, session: session, status: status, notice: notice)
    }

    @Sendable func createConnection(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        _ = try requireCSRF(form, context)
        try state.requireSuperuser(context)
        let name = form.text("name") ?? "", key = form.text("config_key") ?? ""
        let fields = ["name": name, "config_key": key]
        guard (try? FieldLimit.name.check(name)) != nil, (try? FieldLimit.configKey.check(key)) != nil else {
            return try await connectionsPage(context: context, fields: fields, error: "Give a name and a config key of 1 to 200 characters each.",
                                             status: .unprocessableContent, notice: nil)
        }
        do {
            _ = try await state.createDatabaseConnection(name: name, configKey: key, logger: context.logger)
        } catch let error as APIError where error.status == .badRequest {
            return try await connectionsPage(context: context, fields: fields, error: error.detail, status: .unprocessableContent, notice: nil)
        } catch let error as KTDBError where error.code == .conflict {
            return try await connectionsPage(context: context, fields: fields, error: "A database with this name or key already exists.",
                                             status: .conflict, notice: nil)
        }
        return ConsolePage.redirect("/database-connections?done=database-added")
    }

    // MARK: Helpers

    private func session(_ context: APIRequestContext) throws -> ConsoleSession {
        guard let session = context.consoleSession else { throw APIError.unauthorized }
        return session
    }

    /// The confirmation for `?done=` after a redirect (a fixed text per code, never the query's text).
    private func notice(_ request: Request) -> String? {
        switch request.uri.queryParameters.get("done") {
        case "retried": "Provisioning succeeded: the graph is active."
        case "deleted": "The graph was deleted."
        case "deleted-permanently": "The graph was deleted permanently; its slug is free."
        case "member-added": "The member was added."
        case "member-removed": "The member was removed."
        case "role-changed": "The role was changed."
        case "database-added": "The database was added."
        default: nil
        }
    }
}

/// Faults the browser tests inject into a running server (only when
/// `KT_CONSOLE_TEST_FAULTS` names them, never in normal operation).
enum ConsoleFaults {
    /// `connections`: the database list of the creation form fails to load.
    static func connectionsList() async throws {
        if ProcessInfo.processInfo.environment["KT_CONSOLE_TEST_FAULTS"]?.split(separator: ",").contains("connections") == true {
            throw APIError(.serviceUnavailable, "injected fault")
        }
    }
}
