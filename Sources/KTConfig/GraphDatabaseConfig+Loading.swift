import Foundation
import KTCore
import KTDB
import Yams

extension GraphDatabaseConfig {
    /// The fields of one entry in `GRAPH_DATABASES` JSON and in the YAML `graph_databases` section.
    static let fieldNames: Set<String> = [
        "graph_database_url", "write_database_url", "qdrant_url",
        "graph_pool_size", "graph_max_overflow", "graph_pool_timeout", "graph_pool_recycle",
        "write_pool_size", "write_max_overflow", "write_pool_timeout", "write_pool_recycle",
        "graph_pgbouncer", "write_pgbouncer",
    ]

    /// Builds one entry from its fields (all given as text). Unknown fields are an error, so a typo
    /// never silently falls back to a default.
    init(key: String, fields: [String: String], source: String) throws(KTConfigError) {
        let where_ = "\(source).\(key)"
        func fail(_ detail: String) -> KTConfigError { KTConfigError(code: .invalidGraphDatabases, key: where_, detail: detail) }
        if let unknown = fields.keys.sorted().first(where: { !Self.fieldNames.contains($0) }) {
            throw fail("unknown field '\(unknown)'; expected \(Self.fieldNames.sorted().joined(separator: ", "))")
        }
        guard let graph = fields["graph_database_url"], !graph.isEmpty else { throw fail("graph_database_url is required") }
        guard let write = fields["write_database_url"], !write.isEmpty else { throw fail("write_database_url is required") }
        func int(_ name: String, _ fallback: Int) throws(KTConfigError) -> Int {
            guard let text = fields[name] else { return fallback }
            guard let value = Int(text) else { throw fail("\(name) must be an integer, got '\(text)'") }
            return value
        }
        func seconds(_ name: String, _ fallback: Duration) throws(KTConfigError) -> Duration {
            guard let text = fields[name] else { return fallback }
            guard let value = Double(text), value >= 0 else { throw fail("\(name) must be a number of seconds, got '\(text)'") }
            return .milliseconds(Int64(value * 1000))
        }
        func flag(_ name: String, _ fallback: Bool) throws(KTConfigError) -> Bool {
            guard let text = fields[name] else { return fallback }
            guard let value = Self.parseFlag(text) else { throw fail("\(name) must be true or false, got '\(text)'") }
            return value
        }
        self.init(
            graphDatabaseURL: try DatabaseURL.setting(graph, key: "\(where_).graph_database_url"),
            writeDatabaseURL: try DatabaseURL.setting(write, key: "\(where_).write_database_url"),
            qdrantURL: fields["qdrant_url"],
            graphPool: PoolSettings(
                size: try int("graph_pool_size", 20), maxOverflow: try int("graph_max_overflow", 40),
                timeout: try seconds("graph_pool_timeout", .seconds(30)), recycle: try seconds("graph_pool_recycle", .seconds(1800))),
            writePool: PoolSettings(
                size: try int("write_pool_size", 100), maxOverflow: try int("write_max_overflow", 700),
                timeout: try seconds("write_pool_timeout", .seconds(120)), recycle: try seconds("write_pool_recycle", .seconds(600))),
            graphPgBouncer: try flag("graph_pgbouncer", false),
            writePgBouncer: try flag("write_pgbouncer", true)
        )
    }

    /// `true`/`false` as the settings spell them (`1`, `yes`, `on` and `0`, `no`, `off` too); `nil` otherwise.
    static func parseFlag(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off": false
        default: nil
        }
    }

    /// Parses the `GRAPH_DATABASES` JSON object.
    static func entries(fromJSON json: String) throws(KTConfigError) -> [String: GraphDatabaseConfig] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        } catch {
            throw KTConfigError(code: .invalidGraphDatabases, key: "GRAPH_DATABASES", detail: "not valid JSON")
        }
        guard let map = object as? [String: Any] else {
            throw KTConfigError(code: .invalidGraphDatabases, key: "GRAPH_DATABASES", detail: "expected a JSON object keyed by connection key")
        }
        var result: [String: GraphDatabaseConfig] = [:]
        for (key, value) in map {
            guard let entry = value as? [String: Any] else {
                throw KTConfigError(code: .invalidGraphDatabases, key: "GRAPH_DATABASES.\(key)", detail: "expected an object")
            }
            var fields: [String: String] = [:]
            for (field, raw) in entry {
                switch raw {
                case let text as String: fields[field] = text
                case let number as NSNumber: fields[field] = number.stringValue
                case is NSNull: continue
                default: throw KTConfigError(code: .invalidGraphDatabases, key: "GRAPH_DATABASES.\(key).\(field)", detail: "expected a string or a number")
                }
            }
            result[key] = try GraphDatabaseConfig(key: key, fields: fields, source: "GRAPH_DATABASES")
        }
        return result
    }

    /// Builds entries from the YAML `graph_databases` section (already reduced to text fields).
    static func entries(fromYAML section: [String: [String: String]]) throws(KTConfigError) -> [String: GraphDatabaseConfig] {
        var result: [String: GraphDatabaseConfig] = [:]
        for (key, fields) in section {
            result[key] = try GraphDatabaseConfig(key: key, fields: fields, source: "graph_databases")
        }
        return result
    }

    /// The suffixes of `EXTRA_DB_<NAME>_<SUFFIX>` variables.
    static let extraSuffixes = [
        "GRAPH_HOST", "GRAPH_PORT", "GRAPH_USER", "GRAPH_PASSWORD", "GRAPH_DATABASE",
        "WRITE_HOST", "WRITE_PORT", "WRITE_USER", "WRITE_PASSWORD", "WRITE_DATABASE", "QDRANT_URL",
        "GRAPH_PGBOUNCER", "WRITE_PGBOUNCER",
    ]

    /// Discovers entries from `EXTRA_DB_<NAME>_*` variables.
    ///
    /// NAME becomes the key lower-cased with `_` → `-`. Host and database of both sides are
    /// required; user defaults to `kt`, password to empty, port to 5432. An entry missing a
    /// required variable is reported as an issue, not added.
    static func discover(
        names: Set<String>,
        lookup: (String) -> String?
    ) throws(KTConfigError) -> (entries: [String: GraphDatabaseConfig], issues: [SettingsIssue]) {
        var prefixes = Set<String>()
        for name in names where name.hasPrefix("EXTRA_DB_") {
            let rest = name.dropFirst("EXTRA_DB_".count)
            for suffix in extraSuffixes where rest.hasSuffix("_" + suffix) && rest.count > suffix.count + 1 {
                prefixes.insert(String(rest.dropLast(suffix.count + 1)))
            }
        }
        var entries: [String: GraphDatabaseConfig] = [:]
        var issues: [SettingsIssue] = []
        for prefix in prefixes.sorted() {
            let envPrefix = "EXTRA_DB_\(prefix)_"
            let key = prefix.lowercased().replacingOccurrences(of: "_", with: "-")
            func value(_ suffix: String) -> String? {
                let text = lookup(envPrefix + suffix)?.trimmingCharacters(in: .whitespaces)
                return (text?.isEmpty ?? true) ? nil : text
            }
            let missing = ["GRAPH_HOST", "GRAPH_DATABASE", "WRITE_HOST", "WRITE_DATABASE"].filter { value($0) == nil }
            if !missing.isEmpty {
                issues.append(
                    SettingsIssue(
                        key: "EXTRA_DB_\(prefix)",
                        message: "connection '\(key)' is incomplete and was not added: missing \(missing.map { envPrefix + $0 }.joined(separator: ", "))"))
                continue
            }
            func url(_ side: String) throws(KTConfigError) -> DatabaseURL {
                var port = 5432
                if let text = value("\(side)_PORT") {
                    guard let parsed = Int(text), (1...65535).contains(parsed) else {
                        throw KTConfigError(code: .invalidValue, key: envPrefix + "\(side)_PORT", detail: "invalid port '\(text)'")
                    }
                    port = parsed
                }
                return DatabaseURL(
                    host: value("\(side)_HOST")!, port: port,
                    user: value("\(side)_USER") ?? "kt",
                    password: Secret(lookup(envPrefix + "\(side)_PASSWORD") ?? ""),
                    database: value("\(side)_DATABASE")!)
            }
            if key == GraphDatabases.defaultKey {
                throw KTConfigError(code: .reservedKey, key: "EXTRA_DB_\(prefix)", detail: "the key '\(key)' is reserved for the system databases")
            }
            func flag(_ suffix: String, _ fallback: Bool) throws(KTConfigError) -> Bool {
                guard let text = value(suffix) else { return fallback }
                guard let parsed = GraphDatabaseConfig.parseFlag(text) else {
                    throw KTConfigError(code: .invalidValue, key: envPrefix + suffix, detail: "expected true or false, got '\(text)'")
                }
                return parsed
            }
            entries[key] = GraphDatabaseConfig(
                graphDatabaseURL: try url("GRAPH"), writeDatabaseURL: try url("WRITE"), qdrantURL: value("QDRANT_URL"),
                graphPgBouncer: try flag("GRAPH_PGBOUNCER", false), writePgBouncer: try flag("WRITE_PGBOUNCER", true))
        }
        return (entries, issues)
    }
}

/// Reads the `graph_databases` section of the YAML file, which `ConfigReader` cannot enumerate.
enum YAMLGraphDatabases {
    static func read(path: String) throws(KTConfigError) -> [String: [String: String]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        let root: Node?
        do {
            root = try Yams.compose(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw KTConfigError(code: .unreadableFile, key: "KT_CONFIG_FILE", detail: "the YAML file at \(path) is malformed")
        }
        guard let section = root?["graph_databases"] else { return [:] }
        guard let mapping = section.mapping else {
            throw KTConfigError(code: .invalidGraphDatabases, key: "graph_databases", detail: "expected a mapping keyed by connection key")
        }
        var result: [String: [String: String]] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else { continue }
            guard let fields = valueNode.mapping else {
                throw KTConfigError(code: .invalidGraphDatabases, key: "graph_databases.\(key)", detail: "expected a mapping of fields")
            }
            var entry: [String: String] = [:]
            for (fieldNode, fieldValue) in fields {
                guard let field = fieldNode.string else { continue }
                guard let text = fieldValue.string else {
                    throw KTConfigError(code: .invalidGraphDatabases, key: "graph_databases.\(key).\(field)", detail: "expected a scalar value")
                }
                entry[field] = text
            }
            result[key] = entry
        }
        return result
    }
}
