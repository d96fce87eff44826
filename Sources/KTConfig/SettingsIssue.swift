/// A problem found in otherwise loadable settings (for example an incomplete `EXTRA_DB_*` entry).
///
/// Issues are logged at load time and returned by ``Settings/validate()``; they never contain secrets.
public struct SettingsIssue: Sendable, Hashable, CustomStringConvertible {
    /// The setting or entry concerned, for example `EXTRA_DB_SHARED`.
    public var key: String
    /// What is wrong.
    public var message: String

    /// Creates an issue.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    /// `key: message`.
    public var description: String { "\(key): \(message)" }
}
