import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The paths of the OpenAPI document with their methods (`HEAD` wherever `GET` is).
enum DocumentedRoutes {
    /// Each documented path as segments (`nil` for a `{parameter}`), with its methods.
    static let all: [(segments: [String?], methods: Set<String>)] = {
        guard let object = try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any],
            let paths = object["paths"] as? [String: [String: Any]]
        else { return [] }
        return paths.map { path, operations in
            let segments = path.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) }
            var methods = Set(operations.keys.map { $0.uppercased() })
            if methods.contains("GET") { methods.insert("HEAD") }
            return (segments, methods)
        }
    }()

    /// The methods documented for `path` (the best match: most constant segments), or `nil`
    /// when the document has no such path.
    static func methods(for path: String) -> Set<String>? {
        let segments = path.split(separator: "/").map(String.init)
        let matching = all.filter { entry in
            entry.segments.count == segments.count && zip(entry.segments, segments).allSatisfy { pattern, actual in pattern == nil || pattern == actual }
        }
        guard let best = matching.map({ $0.segments.compactMap { $0 }.count }).max() else { return nil }
        return matching.filter { $0.segments.compactMap { $0 }.count == best }.reduce(into: Set<String>()) { $0.formUnion($1.methods) }
    }
}

/// Answers 405 (with `Allow`) for a method the OpenAPI document does not list on a path it
/// documents; the router alone would answer 404.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let allowed = DocumentedRoutes.methods(for: request.uri.path), !allowed.contains(request.method.rawValue) else {
            return try await next(request, context)
        }
        var response = try JSONBody.response(["detail": "Method \(request.method.rawValue) is not allowed here"], status: .methodNotAllowed)
        response.headers[.allow] = allowed.sorted().joined(separator: ", ")
        return response
    }
}
