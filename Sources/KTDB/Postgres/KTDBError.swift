/// The error type of the `KTDB` module.
///
/// Modelled on postgres-nio's `PSQLError`: ``description`` is generic; ``debugDescription``
/// carries the detail (server message, SQLSTATE). No text ever contains a password or a full
/// connection string. Bound values never appear either, because they are never part of the SQL.
public struct KTDBError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionFailed, connectionClosed, server, poolTimeout, poolClosed
            case invalidDatabaseURL, invalidSchemaName, decoding, migrationFailed, invalidArgument, cancelled
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A connection could not be opened (network, authentication, TLS).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke or was closed while in use.
        public static let connectionClosed = Code(.connectionClosed)
        /// The server rejected a statement; see ``KTDBError/sqlState``.
        public static let server = Code(.server)
        /// No connection became free within the pool's checkout timeout.
        public static let poolTimeout = Code(.poolTimeout)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)
        /// A database URL could not be parsed (scheme, port or parameter); the message names
        /// what is wrong, never the password.
        public static let invalidDatabaseURL = Code(.invalidDatabaseURL)
        /// A schema name failed validation.
        public static let invalidSchemaName = Code(.invalidSchemaName)
        /// A column could not be decoded as the requested type.
        public static let decoding = Code(.decoding)
        /// A migration failed; the transaction of that migration was rolled back.
        public static let migrationFailed = Code(.migrationFailed)
        /// An argument is invalid.
        public static let invalidArgument = Code(.invalidArgument)
        /// The task waiting for a statement (or a pooled connection) was cancelled; a connection
        /// whose statement was abandoned this way is closed, never reused.
        public static let cancelled = Code(.cancelled)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// The SQLSTATE the server reported, for ``Code/server`` errors (for example `23505`).
    public var sqlState: String?
    /// A message: the server's primary message or the SDK's own explanation. Never a password.
    public var message: String
    /// The server's detail line, if any (may name key values of a constraint).
    public var serverDetail: String?

    /// Creates an error.
    public init(code: Code, message: String, sqlState: String? = nil, serverDetail: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.serverDetail = serverDetail
    }

    /// A generic description: code and SQLSTATE only.
    public var description: String {
        if let sqlState { return "KTDBError(code: \(code), sqlState: \(sqlState))" }
        return "KTDBError(code: \(code))"
    }

    /// The full detail.
    public var debugDescription: String {
        var text = "KTDBError(code: \(code)"
        if let sqlState { text += ", sqlState: \(sqlState)" }
        text += ", message: \(message)"
        if let serverDetail { text += ", detail: \(serverDetail)" }
        return text + ")"
    }

    /// Whether this is a server error with the SQLSTATE `state`.
    public func hasSQLState(_ state: String) -> Bool { sqlState == state }

    /// `23505` unique_violation.
    public var isUniqueViolation: Bool { sqlState == "23505" }
}
