extension PostgresConnectionPool {
    /// How a pool opens, sizes and checks its connections.
    public struct Configuration: Sendable, Hashable {
        /// How each connection is opened.
        public var connection: PostgresConnection.Configuration
        /// Size, overflow, checkout timeout and recycle age (SQLAlchemy `QueuePool` semantics).
        public var pool: PoolSettings
        /// Check a connection before handing it out. Default true.
        ///
        /// Every checkout verifies locally, without a round trip, that the server has not closed
        /// the connection; a connection idle for longer than ``prePingAfterIdle`` also makes an
        /// empty round trip. A dead connection is replaced transparently.
        public var prePing: Bool
        /// Idle time after which pre-ping makes a server round trip. Default 10 s.
        public var prePingAfterIdle: Duration
        /// How often the maintenance loop (``PostgresConnectionPool/run()``) closes idle connections past their recycle age. Default 30 s.
        public var maintenanceInterval: Duration
        /// The pool's label in metrics and logs (for example `graph-db` or `write:graph_news`).
        public var label: String

        /// Creates a pool configuration.
        public init(
            connection: PostgresConnection.Configuration,
            pool: PoolSettings,
            prePing: Bool = true,
            prePingAfterIdle: Duration = .seconds(10),
            maintenanceInterval: Duration = .seconds(30),
            label: String = "postgres"
        ) {
            self.connection = connection
            self.pool = pool
            self.prePing = prePing
            self.prePingAfterIdle = prePingAfterIdle
            self.maintenanceInterval = maintenanceInterval
            self.label = label
        }
    }

    /// A snapshot of a pool's state.
    public struct Statistics: Sendable, Hashable {
        /// Connections checked out.
        public var inUse: Int
        /// Open connections waiting in the pool.
        public var idle: Int
        /// Connections being opened.
        public var opening: Int
        /// Tasks waiting for a connection.
        public var waiting: Int
    }
}
