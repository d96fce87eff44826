/// Settings of the global Qdrant client.
public struct QdrantSettings: Sendable, Hashable, CustomStringConvertible {
    /// REST URL (`QDRANT_URL`, default `http://localhost:6333`).
    public var url: String
    /// Request timeout (`QDRANT_TIMEOUT` in seconds, default 30).
    public var timeout: Duration
    /// Upgrade `http://` to `https://` (`QDRANT_TLS`, default false).
    public var tls: Bool
    /// API key sent as the `api-key` header (`QDRANT_API_KEY`), if any.
    public var apiKey: Secret?

    /// Creates Qdrant settings.
    public init(url: String = "http://localhost:6333", timeout: Duration = .seconds(30), tls: Bool = false, apiKey: Secret? = nil) {
        self.url = url
        self.timeout = timeout
        self.tls = tls
        self.apiKey = apiKey
    }

    /// The settings with the API key redacted.
    public var description: String {
        "QdrantSettings(url: \(URLRedaction.redactingUserInfo(url)), timeout: \(timeout), tls: \(tls), apiKey: \(apiKey == nil ? "none" : "******"))"
    }
}
