/// Settings of the write-db → graph-db sync.
public struct SyncSettings: Sendable, Hashable {
    /// Seconds between sync cycles (`SYNC_INTERVAL_SECONDS`, default 5).
    public var interval: Duration
    /// Rows per table per cycle (`SYNC_BATCH_SIZE`, default 1000).
    public var batchSize: Int
    /// Attempts before a failing row is abandoned (`SYNC_MAX_RETRIES`, default 5).
    public var maxRetries: Int
    /// Base of the exponential retry backoff (`SYNC_RETRY_BASE_SECONDS`, default 60).
    public var retryBase: Duration
    /// Upper bound of one graph's sync run (`SYNC_TASK_TIMEOUT_MINUTES`, default 15): a graph
    /// still syncing then is abandoned for this pass (its transaction rolls back).
    public var taskTimeout: Duration
    /// How many graphs of one database pair are synced at once (`SYNC_PARALLELISM`, default 8);
    /// the pairs are synced side by side.
    public var parallelism: Int

    /// Creates sync settings.
    public init(
        interval: Duration = .seconds(5),
        batchSize: Int = 1000,
        maxRetries: Int = 5,
        retryBase: Duration = .seconds(60),
        taskTimeout: Duration = .seconds(15 * 60),
        parallelism: Int = 8
    ) {
        self.interval = interval
        self.batchSize = batchSize
        self.maxRetries = maxRetries
        self.retryBase = retryBase
        self.taskTimeout = taskTimeout
        self.parallelism = parallelism
    }
}
