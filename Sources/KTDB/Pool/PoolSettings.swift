/// The sizing of one connection pool, with the semantics of SQLAlchemy's `QueuePool`.
///
/// - `size`: connections kept open when idle.
/// - `maxOverflow`: extra connections opened under load, closed when returned.
/// - `timeout`: how long a checkout waits for a connection before it fails.
/// - `recycle`: a connection older than this is closed and replaced instead of reused.
public struct PoolSettings: Sendable, Hashable {
    /// Connections kept open when idle.
    public var size: Int
    /// Extra connections allowed beyond ``size`` under load.
    public var maxOverflow: Int
    /// Checkout timeout.
    public var timeout: Duration
    /// Maximum age of a connection before it is replaced.
    public var recycle: Duration

    /// Creates pool settings.
    public init(size: Int, maxOverflow: Int, timeout: Duration, recycle: Duration) {
        self.size = size
        self.maxOverflow = maxOverflow
        self.timeout = timeout
        self.recycle = recycle
    }

    /// The total number of connections the pool may hold at once.
    public var maximumConnections: Int { size + maxOverflow }

    /// graph-db defaults: 20 / 40 / 30 s / 1800 s.
    public static let graphDefault = PoolSettings(size: 20, maxOverflow: 40, timeout: .seconds(30), recycle: .seconds(1800))
    /// write-db defaults: 100 / 700 / 120 s / 600 s.
    public static let writeDefault = PoolSettings(size: 100, maxOverflow: 700, timeout: .seconds(120), recycle: .seconds(600))
}
