import Foundation

/// The OpenAPI 3.1 document of the example server, served at `/openapi.json`: the resource file
/// `openapi.json` of this module. Tests check that every path and method in it is routed and
/// every route is in it, and that every response the server tests see is documented there.
enum OpenAPIDocument {
    static let json: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { preconditionFailure("openapi.json is missing from the KTServerKit resources: build with SwiftPM") }
        return text
    }()
}
