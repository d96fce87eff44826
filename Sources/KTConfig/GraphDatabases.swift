/// Names and rules shared by everything that deals with named graph databases.
public enum GraphDatabases {
    /// The reserved connection key of the system database pair.
    ///
    /// A graph created with this key (or with no key) lives in the system databases.
    /// No entry of ``Settings/graphDatabases`` and no `database_connections` row may use it.
    public static let defaultKey = "default"

    /// Whether `key` names the system database pair: `nil`, empty, or ``defaultKey``.
    public static func isSystemKey(_ key: String?) -> Bool {
        guard let key else { return true }
        return key.isEmpty || key == defaultKey
    }
}
