import Foundation
import Synchronization

/// The process's PostgreSQL event loops: threads that wait on every connection's socket
/// (`epoll`) and read the answers, so that no libpq call blocks Swift's cooperative pool.
/// Connections are spread over them. They start with the first connection.
///
/// The count is configuration, not an environment variable the driver reads:
/// `Settings.postgresEventLoops` (`KT_PG_EVENT_LOOPS`) reaches ``configure(count:)`` through
/// `GraphSystem`; a program using KTDB alone calls it before its first connection.
public enum PostgresEventLoops {
    private struct State {
        var requested: Int?
        var running: Int?
    }

    private static let state = Mutex(State())

    /// One loop per active processor, at most 64.
    public static var defaultCount: Int { max(1, min(64, ProcessInfo.processInfo.activeProcessorCount)) }

    /// How many loops run, or `nil` before the first connection started them.
    public static var runningCount: Int? { state.withLock { $0.running } }

    /// Sets how many loops the process runs (1–64). Before the first connection any count is
    /// taken; afterwards only the count already running (the call is then a no-op).
    ///
    /// - Throws: ``KTDBError/Code/invalidArgument`` for a count outside 1–64, or for another
    ///   count than the one already running.
    public static func configure(count: Int) throws(KTDBError) {
        guard (1...64).contains(count) else {
            throw KTDBError(code: .invalidArgument, message: "the PostgreSQL event loop count must be 1 to 64, not \(count)")
        }
        try state.withLock { state throws(KTDBError) in
            if let running = state.running, running != count {
                throw KTDBError(code: .invalidArgument, message: "\(running) PostgreSQL event loops already run; \(count) must be set before the first connection")
            }
            state.requested = count
        }
    }

    /// The count the loops start with (once).
    static func start() -> Int {
        state.withLock { state in
            let count = state.running ?? state.requested ?? defaultCount
            state.running = count
            return count
        }
    }
}
