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
        /// TCP keepalives: a peer that went silent (a network partition, a host that vanished)
        /// is noticed after `idle` + `interval` × `count` without traffic. Default 30 s, 10 s, 3;
        /// `nil` leaves the system's (usually two hours).
        public var keepalives: Keepalives?
        /// How long sent data may stay unacknowledged before the connection is dropped (libpq
        /// `tcp_user_timeout`, Linux). Default 60 s; `nil` leaves the system's.
        public var tcpUserTimeout: Duration?
        /// A `statement_timeout` for every statement of the connection, sent as a startup option
        /// (`options=-c statement_timeout=…`); `nil` (the default) leaves the server's. Through
        /// PgBouncer it needs `ignore_startup_parameters` to exclude `options`, or set it on the
        /// role instead (`ALTER ROLE … SET statement_timeout`).
        public var statementTimeout: Duration?
        /// Whether a task cancelled while its statement runs also sends the server a cancel
        /// request (`PQcancel`). Default `true`. Either way the connection is closed at once and
        /// never reused.
        ///
        /// Turn it off for a database reached through a transaction-mode pooler (a
        /// `DatabaseEndpoint` with `throughPooler` does). There a cancel request races the
        /// end of the transaction it aims at: PgBouncer before 1.18 could pass it to the next
        /// client's statement on the same server connection, and PgBouncer 1.18 (Debian
        /// bookworm's) exits with a FATAL error when the server connection it holds back for the
        /// request hears from its backend meanwhile (pgbouncer#815, #822). Without a cancel
        /// request, closing the connection makes the pooler close its server connection, and
        /// the server stops the statement when it next writes to the client, at its
        /// `statement_timeout`, or at `client_connection_check_interval` if set.
        public var sendsCancelRequests: Bool

        /// TCP keepalive timing.
        public struct Keepalives: Sendable, Hashable {
            /// Idle time before the first probe.
            public var idle: Duration
            /// Time between probes.
            public var interval: Duration
            /// Unanswered probes before the connection is dropped.
            public var count: Int
            /// Creates keepalive timing.
            public init(idle: Duration = .seconds(30), interval: Duration = .seconds(10), count: Int = 3) {
                self.idle = idle
                self.interval = interval
                self.count = count
            }
        }

        /// Creates a configuration.
        public init(
            url: DatabaseURL,
            applicationName: String = "kt",
            defaultSSLMode: SSLMode? = nil,
            preparedStatements: PreparedStatementMode = .cached,
            connectTimeout: Duration = .seconds(10),
            keepalives: Keepalives? = Keepalives(),
            tcpUserTimeout: Duration? = .seconds(60),
            statementTimeout: Duration? = nil,
            sendsCancelRequests: Bool = true
        ) {
            self.url = url
            self.applicationName = applicationName
            self.defaultSSLMode = defaultSSLMode
            self.preparedStatements = preparedStatements
            self.connectTimeout = connectTimeout
            self.keepalives = keepalives
            self.tcpUserTimeout = tcpUserTimeout
            self.statementTimeout = statementTimeout
            self.sendsCancelRequests = sendsCancelRequests
        }

        /// The libpq keywords for this configuration.
        var keywords: [(keyword: String, value: String)] {
            var url = self.url.withDefaultSSLMode(defaultSSLMode)
            url.parameters["application_name"] = applicationName
            url.parameters["client_encoding"] = "UTF8"
            func seconds(_ duration: Duration) -> String { String(max(1, Int(duration.components.seconds))) }
            func milliseconds(_ duration: Duration) -> String { String(max(1, Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000))) }
            // What the URL names wins.
            func set(_ keyword: String, _ value: String) { if url.parameters[keyword] == nil { url.parameters[keyword] = value } }
            set("connect_timeout", seconds(connectTimeout))
            if let keepalives {
                set("keepalives", "1")
                set("keepalives_idle", seconds(keepalives.idle))
                set("keepalives_interval", seconds(keepalives.interval))
                set("keepalives_count", String(max(1, keepalives.count)))
            }
            if let tcpUserTimeout { set("tcp_user_timeout", milliseconds(tcpUserTimeout)) }
            if let statementTimeout {
                let option = "-c statement_timeout=\(milliseconds(statementTimeout))"
                url.parameters["options"] = url.parameters["options"].map { $0 + " " + option } ?? option
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
