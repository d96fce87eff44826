import Foundation
import KTConfig
import KTDB
import KTGraph
import KTProvision
import KTQdrant
import KTServerKit
import Logging
import ServiceLifecycle
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A minimal JSON HTTP client for the example server.
struct APIClient: Sendable {
    let base: String
    let session: URLSession

    struct Reply: @unchecked Sendable {
        var status: Int
        var text: String
        var json: Any?
        var headers: [String: String] = [:]
        var detail: String? { (json as? [String: Any])?["detail"] as? String }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
    }

    func call(_ method: String, _ path: String, token: String? = nil, body: [String: Any]? = nil, rawBody: String? = nil) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let rawBody {
            request.httpBody = Data(rawBody.utf8)
        }
        let (data, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        OpenAPIConformance.check(method: method, path: path, status: status)
        var headers: [String: String] = [:]
        for (name, value) in (response as? HTTPURLResponse)?.allHeaderFields ?? [:] { headers["\(name)".lowercased()] = "\(value)" }
        return Reply(
            status: status, text: String(decoding: data, as: UTF8.self),
            json: data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), headers: headers)
    }
}
