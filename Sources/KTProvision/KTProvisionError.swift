/// The error type of the `KTProvision` module.
public struct KTProvisionError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidSlug, reservedSlug, conflict, unknownConnection, notFound, invalidState, stepFailed, shutDown, invalidArchive
            case invalidArgument, reservedKey, lastAdmin
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The slug breaks the slug rules.
        public static let invalidSlug = Code(.invalidSlug)
        /// The slug is `default`.
        public static let reservedSlug = Code(.reservedSlug)
        /// A graph with the slug exists.
        public static let conflict = Code(.conflict)
        /// The database connection key is not configured (no row, or no settings entry).
        public static let unknownConnection = Code(.unknownConnection)
        /// No such graph.
        public static let notFound = Code(.notFound)
        /// The graph is not in a status that allows the operation (for example a retry of an active graph).
        public static let invalidState = Code(.invalidState)
        /// A provisioning step failed; the graph's status is `error` and a retry converges.
        public static let stepFailed = Code(.stepFailed)
        /// The ``GraphSystem`` was shut down; it hands out no more sessions.
        public static let shutDown = Code(.shutDown)
        /// A graph archive is damaged, not an archive, or newer than this build reads.
        public static let invalidArchive = Code(.invalidArchive)
        /// An argument breaks a rule of the control plane (an e-mail address, a name's length).
        public static let invalidArgument = Code(.invalidArgument)
        /// A database connection uses the reserved key `default`.
        public static let reservedKey = Code(.reservedKey)
        /// The change would leave a graph without an admin.
        public static let lastAdmin = Code(.lastAdmin)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The error's code.
    public var code: Code
    /// The step that failed, for ``Code/stepFailed``.
    public var step: ProvisioningStep?
    /// A message without secrets.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String, step: ProvisioningStep? = nil) {
        self.code = code
        self.message = message
        self.step = step
    }

    /// A generic description.
    public var description: String { "KTProvisionError(code: \(code))" }
    /// The full detail.
    public var debugDescription: String {
        "KTProvisionError(code: \(code)\(step.map { ", step: \($0)" } ?? ""), message: \(message))"
    }
}
