import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging
import NIOCore

/// Console pages: a graph's nodes and one node; the database connections (superusers).
extension ConsoleRoutes {
    // MARK: Nodes

    func engine(_ slug: String, _ context: APIRequestContext) async throws -> (Graph, ReadGraphEngine) {
        let graph = try await state.graph(slug: slug, permission: .read, context: context)
        guard graph.status.isServing else { throw APIError(.serviceUnavailable, "The graph is not active (status \(graph.status)).") }
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
                [
                    "id": node.id.uuidString.lowercased(), "concept": node.concept, "type": node.nodeType.rawValue,
                    "facts": node.factCount, "edges": node.edgeCount, "children": node.childCount,
                ]
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
        let children = try await engine.children(of: id, limit: shown)
        let others = edges.map { $0.sourceID == id ? $0.targetID : $0.sourceID }
        let concepts = Dictionary(try await engine.nodes(ids: Array(Set(others))).map { ($0.id, $0.concept) }, uniquingKeysWith: { a, _ in a })
        var values: [String: Any] = [
            "slug": slug, "concept": node.concept, "type": node.nodeType.rawValue, "updated": node.updatedAt.consoleText,
            "factCount": node.factCount, "edgeCount": node.edgeCount, "childCount": node.childCount,
            "has_facts": !facts.isEmpty, "has_edges": !edges.isEmpty, "has_children": !children.isEmpty,
            "facts": facts.map { ["content": $0.content, "type": $0.factType.rawValue] },
            "edges": edges.map { edge -> [String: Any] in
                let other = edge.sourceID == id ? edge.targetID : edge.sourceID
                return [
                    "relationship": edge.sourceID == id ? "→ \(edge.relationshipType)" : "← \(edge.relationshipType)",
                    "other": other.uuidString.lowercased(), "otherConcept": concepts[other] ?? other.uuidString.lowercased(),
                    "weight": String(format: "%.2f", edge.weight),
                ]
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

    func connectionsPage(
        context: APIRequestContext, fields: [String: String], error: String?, status: HTTPResponse.Status,
        notice: String?
    ) async throws -> Response {
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
            return try await connectionsPage(
                context: context, fields: fields, error: "Give a name and a config key of 1 to 200 characters each.",
                status: .unprocessableContent, notice: nil)
        }
        do {
            _ = try await state.createDatabaseConnection(name: name, configKey: key, logger: context.logger)
        } catch let error as APIError where error.status == .badRequest {
            return try await connectionsPage(context: context, fields: fields, error: error.detail, status: .unprocessableContent, notice: nil)
        } catch let error as KTProvisionError where error.code == .conflict {
            return try await connectionsPage(
                context: context, fields: fields, error: "A database with this name or key already exists.",
                status: .conflict, notice: nil)
        }
        return ConsolePage.redirect("/database-connections?done=database-added")
    }
}
