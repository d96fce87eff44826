public import KTCore

extension QdrantClient {
    /// How a client reaches its Qdrant.
    public struct Configuration: Sendable, Hashable, CustomStringConvertible {
        /// The REST base URL, for example `http://localhost:6333`.
        public var url: String
        /// Sent as the `api-key` header when set. Never logged.
        public var apiKey: Secret?
        /// Per-request timeout. Default 30 s.
        public var timeout: Duration
        /// Upgrade an `http://` URL to `https://`. Default false.
        public var tls: Bool
        /// Retries of idempotent calls on connection errors, timeouts and 5xx.
        public var retry: RetryPolicy
        /// The HTTP stack. Default ``Transport/curl``.
        public var transport: Transport

        /// Creates a configuration.
        public init(url: String, apiKey: Secret? = nil, timeout: Duration = .seconds(30), tls: Bool = false, retry: RetryPolicy = .default, transport: Transport = .curl) {
            self.url = url
            self.apiKey = apiKey
            self.timeout = timeout
            self.tls = tls
            self.retry = retry
            self.transport = transport
        }

        /// The configuration with the URL's user information and the API key redacted.
        public var description: String {
            "QdrantClient.Configuration(url: \(URLRedaction.redactingUserInfo(url)), timeout: \(timeout), tls: \(tls), apiKey: \(apiKey == nil ? "none" : "******"))"
        }
    }

    /// Exponential backoff for idempotent calls: attempt n waits `baseDelay × 2ⁿ⁻¹` (with
    /// jitter, at most `maxDelay`). 4xx answers are never retried.
    public struct RetryPolicy: Sendable, Hashable {
        /// Attempts in all, the first included. 1 disables retries.
        public var maxAttempts: Int
        /// The first delay.
        public var baseDelay: Duration
        /// The longest delay.
        public var maxDelay: Duration

        /// Creates a policy.
        public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration) {
            self.maxAttempts = maxAttempts
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }

        /// 4 attempts, 100 ms doubling up to 2 s.
        public static let `default` = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(2))
        /// No retry.
        public static let none = RetryPolicy(maxAttempts: 1, baseDelay: .zero, maxDelay: .zero)

        func delay(beforeAttempt attempt: Int) -> Duration {
            let exponential = baseDelay * (1 << min(attempt - 2, 20))
            let capped = min(exponential, maxDelay)
            return capped * Double.random(in: 0.75...1.0)
        }
    }
}
