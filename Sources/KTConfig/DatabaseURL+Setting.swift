import KTDB

extension DatabaseURL {
    /// Parses the URL of setting `key` (see ``KTDB/DatabaseURL/init(parsing:key:)``): a URL that
    /// does not parse is a ``KTConfigError/Code/invalidDatabaseURL`` naming the setting.
    static func setting(_ text: String, key: String) throws(KTConfigError) -> DatabaseURL {
        do {
            return try DatabaseURL(parsing: text)
        } catch {
            throw KTConfigError(code: .invalidDatabaseURL, key: key, detail: error.message)
        }
    }
}
