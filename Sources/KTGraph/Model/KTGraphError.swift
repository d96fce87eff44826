/// The error type of the `KTGraph` module.
///
/// ``description`` is generic; ``debugDescription`` carries the detail. No text contains an API
/// key or a connection string.
public struct KTGraphError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case notFound, invalidArgument, invalidParentChain, embedding, syncBusy, syncUnsafe
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A node, edge, fact or dimension that must exist does not.
        public static let notFound = Code(.notFound)
        /// An argument is invalid (empty concept, wrong vector size, ...).
        public static let invalidArgument = Code(.invalidArgument)
        /// A parent assignment would create a cycle, a self-parent, or a chain longer than 50 steps.
        public static let invalidParentChain = Code(.invalidParentChain)
        /// The embedding service failed.
        public static let embedding = Code(.embedding)
        /// Another process holds the graph's sync lock.
        public static let syncBusy = Code(.syncBusy)
        /// The sync cannot tell where it is safe to move its watermark: write-db sessions of
        /// other roles are hidden from it in `pg_stat_activity` (grant it `pg_read_all_stats`).
        public static let syncUnsafe = Code(.syncUnsafe)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// What happened, without secrets.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// A generic description: the code only.
    public var description: String { "KTGraphError(code: \(code))" }

    /// The full detail.
    public var debugDescription: String { "KTGraphError(code: \(code), message: \(message))" }
}
