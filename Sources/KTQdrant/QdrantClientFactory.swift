import Foundation
public import KTConfig
public import Logging
import Synchronization

/// Creates a client that is not shared, pointed at `url` (for example a graph's own Qdrant).
///
/// TLS and the API key come from `settings` (the original factory ignored TLS); `timeout`
/// defaults to the settings' timeout. The caller closes the client.
public func makeQdrantClient(url: String, timeout: Duration? = nil, settings: QdrantSettings, logger: Logger) throws -> QdrantClient {
    var configuration = QdrantClient.Configuration(settings: settings)
    configuration.url = url
    if let timeout { configuration.timeout = timeout }
    return try QdrantClient(configuration: configuration, logger: logger)
}

extension QdrantClient {
    private static let sharedClients = Mutex<[QdrantClient.Configuration: QdrantClient]>([:])

    /// The process-wide client for the global Qdrant of `settings` (one per distinct
    /// configuration). Do not close it.
    public static func shared(settings: QdrantSettings, logger: Logger) throws -> QdrantClient {
        let configuration = Configuration(settings: settings)
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
