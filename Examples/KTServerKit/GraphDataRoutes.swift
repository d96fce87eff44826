import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// Graph-scoped read routes over ``ReadGraphEngine`` (the original's `get_graph_context` rules:
/// 404 unknown, deleted or not visible graph, 503 not active).
struct GraphDataRoutes {
    let state: ServerState

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get("{slug}/nodes", use: listNodes)
        group.get("{slug}/nodes/{node_id}", use: node)
        group.get("{slug}/nodes/{node_id}/facts", use: nodeFacts)
        group.get("{slug}/nodes/{node_id}/edges", use: nodeEdges)
        group.get("{slug}/facts/search", use: searchFacts)
        group.get("{slug}/subgraph", use: subgraph)
    }

    private func engine(_ context: APIRequestContext) async throws -> ReadGraphEngine {
        let graph = try await state.graph(slug: try context.parameters.require("slug"), permission: .read, context: context)
        guard graph.status.isServing else { throw APIError(.serviceUnavailable, "Graph is not yet active") }
        if let reason = graph.schemaError { throw APIError(.serviceUnavailable, "Graph schemas are not migrated: \(reason)") }
        return try await state.system.readEngine(graphID: graph.id, logger: context.logger)
    }

    private func nodeID(_ context: APIRequestContext) throws -> UUID {
        guard let id = UUID(uuidString: try context.parameters.require("node_id")) else { throw APIError(.unprocessableContent, "node_id must be a UUID") }
        return id
    }

    /// A text query parameter (absent or empty: `nil`); NUL is invalid input (PostgreSQL text cannot hold it).
    private func text(_ request: Request, _ name: String) throws -> String? {
        guard let value = request.uri.queryParameters.get(name), !value.isEmpty else { return nil }
        guard !value.utf8.contains(0) else { throw APIError(.unprocessableContent, "\(name) may not contain NUL") }
        return value
    }

    private func int(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError(.unprocessableContent, "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    @Sendable func listNodes(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        let query = request.uri.queryParameters
        let sortText = query.get("sort") ?? "updated_at"
        guard let sort = ReadGraphEngine.NodeSort(rawValue: sortText) else {
            throw APIError(.unprocessableContent, "sort must be one of \(ReadGraphEngine.NodeSort.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let offset = try int(request, "offset", default: 0, range: 0...1_000_000)
        let limit = try int(request, "limit", default: 20, range: 1...200)
        let search = try text(request, "search")
        let type = try text(request, "node_type")
        let nodes = try await engine.listNodes(offset: offset, limit: limit, search: search, nodeType: type.map(NodeType.init(rawValue:)), sort: sort)
        let total = try await engine.countNodes(search: search, nodeType: type.map(NodeType.init(rawValue:)))
        return try JSONBody.response(NodeListResponse(items: nodes.map(NodeResponse.init), total: total, offset: offset, limit: limit))
    }

    @Sendable func node(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        guard let node = try await engine.node(id: try nodeID(context)) else { throw APIError(.notFound, "Node not found") }
        return try JSONBody.response(NodeResponse(node))
    }

    /// Pages of a node's facts and edges: `limit` (1 to 500, default 100) and `offset`; when
    /// more follow, a `Link: <…>; rel="next"` header names the next page.
    static let pageLimits = (default: 100, maximum: 500)

    private func page(_ request: Request) throws -> (offset: Int, limit: Int) {
        (try int(request, "offset", default: 0, range: 0...1_000_000), try int(request, "limit", default: Self.pageLimits.default, range: 1...Self.pageLimits.maximum))
    }

    /// `items` (read with one more than `limit`) as a JSON array, with a `Link` to the next page when there is one.
    private func paged<T: Encodable>(_ items: [T], _ request: Request, offset: Int, limit: Int) throws -> Response {
        var response = try JSONBody.response(Array(items.prefix(limit)))
        if items.count > limit {
            var components = URLComponents()
            components.path = request.uri.path
            var query = (URLComponents(string: request.uri.description)?.queryItems ?? []).filter { $0.name != "offset" && $0.name != "limit" }
            query += [URLQueryItem(name: "offset", value: "\(offset + limit)"), URLQueryItem(name: "limit", value: "\(limit)")]
            components.queryItems = query
            response.headers[HTTPField.Name("Link")!] = "<\(components.string ?? "")>; rel=\"next\""
        }
        return response
    }

    @Sendable func nodeFacts(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        let id = try nodeID(context)
        let (offset, limit) = try page(request)
        guard try await engine.node(id: id) != nil else { throw APIError(.notFound, "Node not found") }
        return try paged(try await engine.nodeFacts(of: id, offset: offset, limit: limit + 1).map { FactResponse($0) }, request, offset: offset, limit: limit)
    }

    @Sendable func nodeEdges(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        let id = try nodeID(context)
        guard try await engine.node(id: id) != nil else { throw APIError(.notFound, "Node not found") }
        let direction: EdgeDirection =
            switch request.uri.queryParameters.get("direction") ?? "both" {
            case "outgoing": .outgoing
            case "incoming": .incoming
            case "both": .both
            default: throw APIError(.unprocessableContent, "direction must be outgoing, incoming or both")
            }
        let (offset, limit) = try page(request)
        return try paged(try await engine.edges(of: id, direction: direction, offset: offset, limit: limit + 1).map(EdgeResponse.init), request, offset: offset, limit: limit)
    }

    @Sendable func searchFacts(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        guard let text = try text(request, "q") else { throw APIError(.unprocessableContent, "q is required") }
        let limit = try int(request, "limit", default: 20, range: 1...200)
        switch request.uri.queryParameters.get("mode") ?? "text" {
        case "text":
            return try JSONBody.response(try await engine.searchFactsText(text, limit: limit).map { FactResponse($0) })
        case "vector":
            let vector = try await state.settings.embedder.embed(text)
            return try JSONBody.response(try await engine.searchFacts(embedding: vector, limit: limit, threshold: 0).map { FactResponse($0.fact, score: $0.score) })
        default:
            throw APIError(.unprocessableContent, "mode must be text or vector")
        }
    }

    @Sendable func subgraph(_ request: Request, context: APIRequestContext) async throws -> Response {
        let engine = try await engine(context)
        let texts = (request.uri.queryParameters.get("node_ids") ?? "").split(separator: ",").map(String.init)
        let ids = texts.compactMap(UUID.init(uuidString:))
        guard !ids.isEmpty, ids.count == texts.count, ids.count <= 100 else {
            throw APIError(.unprocessableContent, "node_ids must be 1 to 100 comma-separated UUIDs")
        }
        let depth = try int(request, "depth", default: 1, range: 0...3)
        let result = try await engine.subgraph(nodeIDs: ids, depth: depth, maxNodes: Self.subgraphLimits.nodes, maxEdges: Self.subgraphLimits.edges)
        return try JSONBody.response(SubgraphResponse(nodes: result.nodes.map(NodeResponse.init), edges: result.edges.map(EdgeResponse.init), truncated: result.truncated))
    }
}

struct NodeResponse: Encodable {
    var id: String, concept: String, nodeType: String, parentID: String?, definition: String?
    var factCount: Int, edgeCount: Int, childCount: Int, dimensionCount: Int, updatedAt: Date

    init(_ node: GraphNode) {
        id = node.id.json; concept = node.concept; nodeType = node.nodeType.rawValue; parentID = node.parentID?.json; definition = node.definition
        factCount = node.factCount; edgeCount = node.edgeCount; childCount = node.childCount; dimensionCount = node.dimensionCount; updatedAt = node.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, concept, definition, nodeType = "node_type", parentID = "parent_id", factCount = "fact_count", edgeCount = "edge_count"
        case childCount = "child_count", dimensionCount = "dimension_count", updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(concept, forKey: .concept); try c.encode(nodeType, forKey: .nodeType)
        try c.encode(parentID, forKey: .parentID); try c.encode(definition, forKey: .definition); try c.encode(factCount, forKey: .factCount)
        try c.encode(edgeCount, forKey: .edgeCount); try c.encode(childCount, forKey: .childCount); try c.encode(dimensionCount, forKey: .dimensionCount)
        try c.encode(updatedAt, forKey: .updatedAt)
    }
}

struct NodeListResponse: Encodable { var items: [NodeResponse]; var total: Int; var offset: Int; var limit: Int }

struct FactResponse: Encodable {
    var id: String, content: String, factType: String, score: Double?
    init(_ fact: GraphFact, score: Double? = nil) { id = fact.id.json; content = fact.content; factType = fact.factType.rawValue; self.score = score }
    enum CodingKeys: String, CodingKey { case id, content, factType = "fact_type", score }
}

struct EdgeResponse: Encodable {
    var id: String, sourceID: String, targetID: String, relationshipType: String, weight: Double, factIDs: [String]
    init(_ edge: GraphEdge) {
        id = edge.id.json; sourceID = edge.sourceID.json; targetID = edge.targetID.json; relationshipType = edge.relationshipType.rawValue
        weight = edge.weight; factIDs = edge.factIDs.map(\.json)
    }
    enum CodingKeys: String, CodingKey {
        case id, weight, sourceID = "source_node_id", targetID = "target_node_id", relationshipType = "relationship_type", factIDs = "fact_ids"
    }
}

struct SubgraphResponse: Encodable { var nodes: [NodeResponse]; var edges: [EdgeResponse]; var truncated: Bool }

extension GraphDataRoutes {
    /// A subgraph answer holds at most this many nodes and edges (`truncated` says when more were left out).
    static let subgraphLimits = (nodes: 500, edges: 2000)
}
