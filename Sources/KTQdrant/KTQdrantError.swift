/// The error type of the `KTQdrant` module.
///
/// ``description`` is generic; ``debugDescription`` adds the HTTP status, the operation and
/// the first 512 bytes of the response body. No text ever contains the API key.
public struct KTQdrantError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case transport, http, decoding, invalidConfiguration, invalidArgument, closed, cancelled
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server could not be reached or the connection broke (after retries).
        public static let transport = Code(.transport)
        /// The server answered with a non-2xx status; see ``KTQdrantError/httpStatus``.
        public static let http = Code(.http)
        /// The response was not what the Qdrant API specifies.
        public static let decoding = Code(.decoding)
        /// The client configuration is unusable (for example a malformed URL).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// An argument is invalid (for example a vector of the wrong size).
        public static let invalidArgument = Code(.invalidArgument)
        /// The client was closed.
        public static let closed = Code(.closed)
        /// The calling task was cancelled and the request stopped; whether the server had
        /// already acted on it is unknown.
        public static let cancelled = Code(.cancelled)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// The HTTP status, for ``Code/http`` errors.
    public var httpStatus: Int?
    /// What the SDK was doing, for example `PUT /collections/{name}/points`.
    public var operation: String?
    /// A message: Qdrant's `status.error` text or the SDK's own explanation.
    public var message: String
    /// The first 512 bytes of the response body, if any.
    public var responseBody: String?

    /// Creates an error.
    public init(code: Code, message: String, httpStatus: Int? = nil, operation: String? = nil, responseBody: String? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.operation = operation
        self.responseBody = responseBody.map { String($0.utf8.prefix(512)) ?? String($0.prefix(512)) }
    }

    /// A generic description: code and HTTP status only.
    public var description: String {
        if let httpStatus { return "KTQdrantError(code: \(code), httpStatus: \(httpStatus))" }
        return "KTQdrantError(code: \(code))"
    }

    /// The full detail.
    public var debugDescription: String {
        var text = "KTQdrantError(code: \(code)"
        if let httpStatus { text += ", httpStatus: \(httpStatus)" }
        if let operation { text += ", operation: \(operation)" }
        text += ", message: \(message)"
        if let responseBody { text += ", body: \(responseBody)" }
        return text + ")"
    }

    /// Whether the error is worth retrying for an idempotent call: transport failures and 5xx.
    var isRetryable: Bool {
        code == .transport || (code == .http && (httpStatus ?? 0) >= 500)
    }
}
