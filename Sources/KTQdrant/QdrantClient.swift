public import Foundation
import KTCore
public import Logging
import Synchronization

/// A client of Qdrant's REST API over libcurl (default) or Foundation's `URLSession`.
///
/// It works unchanged against a real Qdrant and against the project's local server
/// (`Tools/qdrant-local`). Idempotent calls are retried with exponential backoff on connection
/// errors, timeouts and 5xx answers; 4xx answers are never retried. The API key travels as the
/// `api-key` header and never appears in a log or an error.
///
/// A client you create with ``init(configuration:logger:)`` or ``makeQdrantClient(url:timeout:settings:logger:)``
/// is yours to ``close()``; the shared client of ``QdrantClient/shared(settings:logger:)`` is not.
public final class QdrantClient: Sendable {
    /// The configuration (with the URL as given).
    public let configuration: Configuration
    /// The base URL requests go to (after any TLS upgrade).
    public let baseURL: URL
    private let transport: any QdrantTransport
    private let logger: Logger
    private let isClosed = Atomic<Bool>(false)

    /// Creates a client. It opens no connection until the first call.
    ///
    /// - Throws: ``KTQdrantError/Code/invalidConfiguration`` for a URL that is not `http(s)://host[:port]`.
    public init(configuration: Configuration, logger: Logger) throws {
        var text = configuration.url.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        if configuration.tls, text.lowercased().hasPrefix("http://") { text = "https://" + text.dropFirst("http://".count) }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw KTQdrantError(code: .invalidConfiguration, message: "invalid Qdrant URL '\(URLRedaction.redactingUserInfo(configuration.url))': expected http(s)://host[:port]")
        }
        if configuration.apiKey != nil, scheme == "http" {
            logger.warning("A Qdrant API key will travel over plain HTTP; use https or QDRANT_TLS", metadata: ["kt.qdrant.url": "\(URLRedaction.redactingUserInfo(text))"])
        }
        self.configuration = configuration
        self.baseURL = url
        self.logger = logger
        self.transport = Self.makeTransport(configuration.transport, timeout: configuration.timeout)
    }

    /// Closes the client: in-flight requests finish, later calls fail with ``KTQdrantError/Code/closed``.
    public func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        transport.shutdown()
    }

    // MARK: Transport

    private struct Envelope<Result: Decodable>: Decodable {
        var result: Result?
    }

    private struct ErrorEnvelope: Decodable {
        struct Status: Decodable { var error: String? }
        var status: Status?
    }

    /// Sends one request and decodes the `result` of Qdrant's envelope.
    func send<Response: Decodable>(
        _ method: String,
        _ path: String,
        query: [URLQueryItem] = [],
        body: (some Encodable)? = Optional<NoBody>.none,
        idempotent: Bool,
        collection: String? = nil,
        as type: Response.Type = Response.self
    ) async throws -> Response {
        let operation = "\(method) \(path)"
        guard !isClosed.load(ordering: .acquiring) else {
            throw KTQdrantError(code: .closed, message: "the Qdrant client is closed", operation: operation)
        }
        var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = (components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath) + path
        if !query.isEmpty { components.queryItems = query }
        var request = QdrantHTTPRequest(method: method, url: components.url!, headers: [("Accept", "application/json")], body: nil)
        if let apiKey = configuration.apiKey { request.headers.append(("api-key", apiKey.revealedValue)) }
        if let body {
            request.headers.append(("Content-Type", "application/json"))
            do {
                request.body = try JSONEncoder().encode(body)
            } catch {
                throw KTQdrantError(code: .invalidArgument, message: "the request body could not be encoded: \(error)", operation: operation)
            }
        }
        let attempts = idempotent ? max(1, configuration.retry.maxAttempts) : 1
        var attempt = 1
        while true {
            do {
                let (data, status) = try await transport.perform(request, operation: operation)
                guard (200..<300).contains(status) else {
                    let message = (try? JSONDecoder().decode(ErrorEnvelope.self, from: data))?.status?.error ?? "HTTP \(status)"
                    throw KTQdrantError(
                        code: .http, message: message, httpStatus: status, operation: operation,
                        responseBody: String(decoding: data.prefix(512), as: UTF8.self))
                }
                do {
                    guard let result = try JSONDecoder().decode(Envelope<Response>.self, from: data).result else {
                        throw KTQdrantError(code: .decoding, message: "the response has no result", operation: operation)
                    }
                    return result
                } catch let error as KTQdrantError {
                    throw error
                } catch {
                    throw KTQdrantError(
                        code: .decoding, message: "unexpected response: \(error)", httpStatus: status, operation: operation,
                        responseBody: String(decoding: data.prefix(512), as: UTF8.self))
                }
            } catch let error as KTQdrantError where error.isRetryable && attempt < attempts {
                attempt += 1
                let delay = configuration.retry.delay(beforeAttempt: attempt)
                logger.debug(
                    "Retrying a Qdrant request",
                    metadata: [
                        "kt.qdrant.operation": "\(operation)", "kt.collection": "\(collection ?? "-")",
                        "kt.qdrant.attempt": "\(attempt)", "kt.error": "\(error)",
                    ])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Percent-encodes one path segment (a collection name).
    static func segment(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }
}

/// The body of a request that has none.
struct NoBody: Encodable {}
