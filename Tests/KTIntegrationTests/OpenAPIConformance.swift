import Foundation
import Testing

/// The example server's OpenAPI document (the resource file), and a check that a response the
/// tests received is documented: its operation (path template and method) and its status.
/// ``APIClient`` runs the check on every call, so every server test checks every response it
/// sees; schemathesis checks the bodies against the schemas.
enum OpenAPIConformance {
    /// `(method, template, documented statuses)` for every operation.
    private static let operations: [(method: String, template: String, statuses: Set<String>)] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples/KTServerKit/openapi.json")
        guard let data = try? Data(contentsOf: file), let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let paths = document["paths"] as? [String: [String: Any]]
        else { return [] }
        return paths.flatMap { template, methods in
            methods.compactMap { method, operation -> (String, String, Set<String>)? in
                guard let responses = (operation as? [String: Any])?["responses"] as? [String: Any] else { return nil }
                return (method.uppercased(), template, Set(responses.keys))
            }
        }
    }()

    /// Whether `route` is an instance of `template` (a `{name}` segment matches any one segment).
    private static func matches(_ route: String, _ template: String) -> Bool {
        let parts = route.split(separator: "/", omittingEmptySubsequences: false), pattern = template.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == pattern.count
            && zip(parts, pattern).allSatisfy { part, wanted in
                wanted.hasPrefix("{") && wanted.hasSuffix("}") ? !part.isEmpty : part == wanted
            }
    }

    /// Whether the document could be read (a test asserts it).
    static var isLoaded: Bool { !operations.isEmpty }

    /// Records an issue when a response to an API path is not documented.
    static func check(method: String, path: String, status: Int) {
        let route = String(path.split(separator: "?", maxSplits: 1).first ?? "")
        guard route.hasPrefix("/api/") || route.hasPrefix("/health") || route == "/healthz" || route == "/openapi.json" else { return }
        // A literal path wins over a template (`/graphs/database-connections` over `/graphs/{slug}`).
        var matching = operations.filter { $0.template == route }
        if matching.isEmpty { matching = operations.filter { matches(route, $0.template) } }
        // A path no operation has, or a method the path lacks: the server's own 404 and 405.
        guard let operation = matching.first(where: { $0.method == method }) else {
            if !matching.isEmpty, status != 405 { Issue.record("\(method) \(route) answered \(status): the method is not documented") }
            if matching.isEmpty, status != 404 { Issue.record("\(method) \(route) answered \(status): the path is not documented") }
            return
        }
        guard operation.statuses.contains(String(status)) || operation.statuses.contains("default") else {
            Issue.record("\(method) \(operation.template) answered \(status), which its OpenAPI responses (\(operation.statuses.sorted())) do not list")
            return
        }
    }
}

@Suite("OpenAPI conformance check")
struct OpenAPIConformanceTests {
    @Test("the check reads the document, passes documented answers and records an issue for an undocumented status, method or path")
    func checks() {
        #expect(OpenAPIConformance.isLoaded)
        OpenAPIConformance.check(method: "GET", path: "/api/v1/graphs?x=1", status: 200)
        OpenAPIConformance.check(method: "GET", path: "/api/v1/graphs/news/nodes/abc", status: 404)
        OpenAPIConformance.check(method: "GET", path: "/console-page", status: 418)
        withKnownIssue { OpenAPIConformance.check(method: "GET", path: "/api/v1/graphs", status: 418) }
        withKnownIssue { OpenAPIConformance.check(method: "PATCH", path: "/api/v1/graphs", status: 200) }
        withKnownIssue { OpenAPIConformance.check(method: "GET", path: "/api/v1/nowhere", status: 200) }
    }
}
