public import KTConfig

extension PostgresConnection {
    /// How to open a connection.
    public struct Configuration: Sendable, Hashable {
        /// Where to connect. Its password is passed to libpq as a separate keyword, never in a URL.
        public var url: DatabaseURL
        /// `application_name` reported to the server (visible in `pg_stat_activity`). Default `kt`.
        public var applicationName: String
        /// `sslmode` used when ``url`` names none; `nil` keeps libpq's default (`prefer`).
        public var defaultSSLMode: SSLMode?
        /// Whether statements are prepared once per connection and cached, or sent unnamed each time.
        public var preparedStatements: PreparedStatementMode
        /// Connect timeout. Default 10 s.
        public var connectTimeout: Duration

        /// Creates a configuration.
        public init(
            url: DatabaseURL,
            applicationName: String = "kt",
            defaultSSLMode: SSLMode? = nil,
            preparedStatements: PreparedStatementMode = .cached,
            connectTimeout: Duration = .seconds(10)
        ) {
            self.url = url
            self.applicationName = applicationName
            self.defaultSSLMode = defaultSSLMode
            self.preparedStatements = preparedStatements
            self.connectTimeout = connectTimeout
        }

        /// The libpq keywords for this configuration.
        var keywords: [(keyword: String, value: String)] {
            var url = self.url.withDefaultSSLMode(defaultSSLMode)
            url.parameters["application_name"] = applicationName
            url.parameters["client_encoding"] = "UTF8"
            if url.parameters["connect_timeout"] == nil {
                url.parameters["connect_timeout"] = String(max(1, Int(connectTimeout.components.seconds)))
            }
            return url.connectionKeywords
        }
    }

    /// Whether named prepared statements are used.
    public struct PreparedStatementMode: Sendable, Hashable, CustomStringConvertible {
        /// How many statements one connection keeps prepared; 0 means none.
        let capacity: Int
        private init(capacity: Int) { self.capacity = capacity }

        /// Each distinct SQL text is prepared once per connection and executed by name: the fast
        /// path for direct connections to PostgreSQL. A connection keeps at most 256 statements
        /// prepared; later distinct texts are sent unnamed, so a pool shared by many graphs
        /// (whose statements name their schema) holds a bounded number of statements per
        /// server backend.
        public static let cached = PreparedStatementMode(capacity: 256)
        /// Like ``cached`` with at most `capacity` prepared statements per connection (at least 1).
        public static func cached(capacity: Int) -> PreparedStatementMode { PreparedStatementMode(capacity: max(1, capacity)) }
        /// Every statement is sent unnamed (`PQexecParams`): required behind PgBouncer in
        /// transaction mode, where a named statement prepared in one transaction may be missing
        /// on the server connection of the next.
        public static let disabled = PreparedStatementMode(capacity: 0)

        var usesNamedStatements: Bool { capacity > 0 }

        /// `cached` or `disabled`.
        public var description: String { capacity > 0 ? "cached" : "disabled" }
    }
}
