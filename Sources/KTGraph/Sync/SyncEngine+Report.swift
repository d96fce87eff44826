extension SyncEngine {
    /// What one cycle did.
    public struct Report: Sendable, Hashable {
        /// Rows applied per table.
        public var applied: [String: Int] = [:]
        /// Tombstones applied.
        public var deleted = 0
        /// Rows parked because a parent has not arrived.
        public var deferred = 0
        /// Rows that failed (queued for retry).
        public var failed = 0
        /// Queue rows that succeeded on retry.
        public var recovered = 0
        /// Queue rows given up after `maxRetries`.
        public var abandoned = 0
        /// Table batches that failed as a whole and were applied row by row instead (each row
        /// in its own savepoint, so only the bad rows fail).
        public var rowByRowBatches = 0
        /// Whether a table still had rows when it reached ``SyncEngine/batchesPerTable`` batches
        /// (the next cycle goes on with them).
        public var reachedBatchLimit = false
        /// Total rows applied.
        public var totalApplied: Int { applied.values.reduce(0, +) + deleted + recovered }

        /// Adds another report's figures to this one.
        public mutating func add(_ other: Report) {
            for (table, count) in other.applied { applied[table, default: 0] += count }
            deleted += other.deleted
            deferred += other.deferred
            failed += other.failed
            recovered += other.recovered
            abandoned += other.abandoned
            rowByRowBatches += other.rowByRowBatches
            reachedBatchLimit = reachedBatchLimit || other.reachedBatchLimit
        }
    }
}
