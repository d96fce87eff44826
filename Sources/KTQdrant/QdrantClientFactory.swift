import Foundation
public import Logging
import Synchronization

/// Creates a client that is not shared, pointed at `url` (for example a graph's own Qdrant).
///
/// TLS, the API key and the retry policy come from `configuration` (typically the global
/// client's; the original factory ignored TLS), its URL replaced by `url`; `timeout` defaults to
/// its timeout. Without one, the defaults of ``QdrantClient/Configuration``. The caller closes
/// the client.
public func makeQdrantClient(url: String, timeout: Duration? = nil, configuration base: QdrantClient.Configuration? = nil, logger: Logger) throws -> QdrantClient {
    var configuration = base ?? QdrantClient.Configuration(url: url)
    configuration.url = url
    if let timeout { configuration.timeout = timeout }
    return try QdrantClient(configuration: configuration, logger: logger)
}

extension QdrantClient {
    private static let sharedClients = Mutex<[QdrantClient.Configuration: QdrantClient]>([:])

    /// The process-wide client for `configuration` (one per distinct configuration). Do not
    /// close it.
    public static func shared(configuration: Configuration, logger: Logger) throws -> QdrantClient {
        if let client = sharedClients.withLock({ $0[configuration] }) { return client }
        let client = try QdrantClient(configuration: configuration, logger: logger)
        return sharedClients.withLock { clients in
            if let existing = clients[configuration] { return existing }
            clients[configuration] = client
            return client
        }
    }

    /// Whether two Qdrant URLs name the same server (compared without trailing slashes, case-insensitively).
    public static func sameServer(_ a: String, _ b: String) -> Bool {
        func normalised(_ text: String) -> String {
            var text = text.trimmingCharacters(in: .whitespaces).lowercased()
            while text.hasSuffix("/") { text.removeLast() }
            return text
        }
        return normalised(a) == normalised(b)
    }
}
