/// The error type of the `KTConfig` module.
///
/// Like postgres-nio's `PSQLError`, the ``description`` is generic and never contains
/// configuration values; the detail (which key, which entry) is in ``debugDescription``.
/// No password or API key is ever part of either text.
public struct KTConfigError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidDatabaseURL
            case invalidValue
            case reservedKey
            case invalidGraphDatabases
            case unreadableFile
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A PostgreSQL URL could not be parsed or uses a scheme or parameter libpq cannot take.
        public static let invalidDatabaseURL = Code(.invalidDatabaseURL)
        /// A setting holds a value of the wrong type or outside its range.
        public static let invalidValue = Code(.invalidValue)
        /// A graph database entry uses the reserved key ``GraphDatabases/defaultKey``.
        public static let reservedKey = Code(.reservedKey)
        /// The `GRAPH_DATABASES` JSON or the YAML `graph_databases` section is malformed.
        public static let invalidGraphDatabases = Code(.invalidGraphDatabases)
        /// A configuration file named by the environment could not be read or parsed.
        public static let unreadableFile = Code(.unreadableFile)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// The setting or entry the error is about (for example `DATABASE_URL` or `graph_databases.shared`), if any.
    public var key: String?
    /// A human-readable detail. It never contains a password or API key.
    public var detail: String

    /// Creates an error.
    public init(code: Code, key: String? = nil, detail: String) {
        self.code = code
        self.key = key
        self.detail = detail
    }

    /// A generic description that reveals no configuration value.
    public var description: String { "KTConfigError(code: \(code))" }

    /// The full detail: code, key and message.
    public var debugDescription: String {
        var text = "KTConfigError(code: \(code)"
        if let key { text += ", key: \(key)" }
        return text + ", detail: \(detail))"
    }
}
