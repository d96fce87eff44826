import Configuration
import Foundation
import KTCore
import KTDB
import KTGraph
import KTQdrant
public import Logging
import SystemPackage

extension Settings {
    /// One scalar setting: its environment variable and its place in the sectioned YAML file.
    struct Key: Sendable {
        /// The flat name, lower-case: the environment variable is its upper-case form.
        var name: String
        /// The YAML path (`section.key`).
        var yamlPath: [String]
        var isSecret: Bool = false

        var environmentName: String { name.uppercased() }
    }

    /// Every scalar key `load` reads. The YAML path is `infrastructure.<name>` unless listed otherwise.
    static let keys: [Key] = {
        let infrastructure = [
            "database_url", "write_database_url", "db_sslmode", "write_db_sslmode",
            "db_pool_size", "db_max_overflow", "db_pool_timeout", "db_pool_recycle",
            "write_db_pool_size", "write_db_max_overflow", "write_db_pool_timeout", "write_db_pool_recycle",
            "db_pgbouncer", "write_db_pgbouncer",
            "qdrant_url", "qdrant_timeout", "qdrant_tls", "qdrant_api_key",
            "sync_interval_seconds", "sync_batch_size", "sync_max_retries", "sync_retry_base_seconds", "sync_task_timeout_minutes",
            "sync_parallelism", "migration_parallelism",
        ].map { Key(name: $0, yamlPath: ["infrastructure", $0], isSecret: $0 == "qdrant_api_key" || $0.hasSuffix("database_url")) }
        return infrastructure + [
            Key(name: "embedding_dimensions", yamlPath: ["embeddings", "dimensions"]),
            Key(name: "embedding_base_url", yamlPath: ["embeddings", "base_url"]),
            Key(name: "embedding_model", yamlPath: ["embeddings", "model"]),
            Key(name: "embedding_api_key", yamlPath: ["embeddings", "api_key"], isSecret: true),
            Key(name: "run_migrations_on_startup", yamlPath: ["orchestrator", "run_migrations_on_startup"]),
        ]
    }()

    /// Loads settings from, highest priority first: `overrides`, `environment`, the `.env` file, the
    /// YAML file, and the defaults of ``init()``.
    ///
    /// Keys (environment name; YAML path in parentheses):
    /// - `DATABASE_URL`, `WRITE_DATABASE_URL`, `DB_SSLMODE`, `WRITE_DB_SSLMODE` (`infrastructure.*`)
    /// - `DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, `DB_POOL_TIMEOUT`, `DB_POOL_RECYCLE` and the same with
    ///   the `WRITE_DB_` prefix; timeouts and recycle ages in seconds. Each sizes the one pool a
    ///   process keeps to that database, shared by every graph living there.
    /// - `DB_PGBOUNCER` (default false), `WRITE_DB_PGBOUNCER` (default true): the database is
    ///   reached through a transaction-mode pooler.
    /// - `MULTIGRAPH_*` pool settings are retired (graphs no longer get pools of their own); a set
    ///   one is reported in ``loadIssues`` and ignored.
    /// - `QDRANT_URL`, `QDRANT_TIMEOUT`, `QDRANT_TLS`, `QDRANT_API_KEY` (secret)
    /// - `SYNC_INTERVAL_SECONDS`, `SYNC_BATCH_SIZE`, `SYNC_MAX_RETRIES`, `SYNC_RETRY_BASE_SECONDS`, `SYNC_TASK_TIMEOUT_MINUTES`,
    ///   `SYNC_PARALLELISM` (graphs synced at once per database pair, default 8)
    /// - `MIGRATION_PARALLELISM` (graphs migrated at once per database, default 4)
    /// - `KT_PG_EVENT_LOOPS` (PostgreSQL event loop threads, 1–64; default one per processor)
    /// - `EMBEDDING_DIMENSIONS`, `EMBEDDING_BASE_URL`, `EMBEDDING_MODEL`, `EMBEDDING_API_KEY` (secret)
    ///   (`embeddings.dimensions`, `embeddings.base_url`, `embeddings.model`, `embeddings.api_key`)
    /// - `RUN_MIGRATIONS_ON_STARTUP` (`orchestrator.run_migrations_on_startup`)
    /// - `GRAPH_DATABASES` (a JSON object), `EXTRA_DB_<NAME>_{GRAPH,WRITE}_{HOST,PORT,USER,PASSWORD,DATABASE}`,
    ///   `EXTRA_DB_<NAME>_QDRANT_URL`, and the YAML `graph_databases` section; see `Documentation/Configuration.md`.
    ///
    /// The `.env` file is `KT_ENV_FILE` (default `./.env`, optional) and the YAML file is
    /// `KT_CONFIG_FILE` (default `./config.yaml`, optional); a file named explicitly must exist.
    ///
    /// - Parameters:
    ///   - environment: the variables to read; `nil` reads the process environment.
    ///   - overrides: explicit values, keyed by environment variable name; they win over everything.
    ///   - logger: receives one warning per incomplete `EXTRA_DB_*` entry.
    /// - Throws: ``KTConfigError`` naming the key for any malformed value, and
    ///   ``KTConfigError/Code/reservedKey`` when a graph database entry uses ``GraphDatabases/defaultKey``.
    public static func load(
        environment: [String: String]? = nil,
        overrides: [String: String] = [:],
        logger: Logger
    ) async throws(KTConfigError) -> Settings {
        let sources = try await SettingsSources.make(environment: environment ?? ProcessInfo.processInfo.environment, overrides: overrides)
        var settings = try Settings(sources: sources)
        for issue in settings.loadIssues {
            logger.warning("Ignoring a setting", metadata: ["kt.config.key": "\(issue.key)", "kt.config.issue": "\(issue.message)"])
        }
        settings.loadIssues.sort { $0.key < $1.key }
        return settings
    }

    /// Why a `MULTIGRAPH_*` variable is ignored.
    static let retiredMultigraphMessage = "retired and ignored: every graph on a database shares that database's one pool per process; size the system pools with DB_POOL_* and WRITE_DB_POOL_*"

    init(sources: SettingsSources) throws(KTConfigError) {
        self.init()
        let reader = sources.reader
        func string(_ name: String) -> String? {
            let key = Self.keys.first { $0.name == name }
            let value = reader.string(forKey: ConfigKey([name]), isSecret: key?.isSecret ?? false)?
                .trimmingCharacters(in: .whitespaces)
            return (value?.isEmpty ?? true) ? nil : value
        }
        func int(_ name: String, _ current: Int) throws(KTConfigError) -> Int {
            guard let text = string(name) else { return current }
            guard let value = Int(text) else {
                throw KTConfigError(code: .invalidValue, key: name.uppercased(), detail: "expected an integer, got '\(text)'")
            }
            return value
        }
        func seconds(_ name: String, _ current: Duration, scale: Double = 1) throws(KTConfigError) -> Duration {
            guard let text = string(name) else { return current }
            guard let value = Double(text), value >= 0, value.isFinite else {
                throw KTConfigError(code: .invalidValue, key: name.uppercased(), detail: "expected a non-negative number of seconds, got '\(text)'")
            }
            return .milliseconds(Int64((value * scale * 1000).rounded()))
        }
        func bool(_ name: String, _ current: Bool) throws(KTConfigError) -> Bool {
            guard let text = string(name)?.lowercased() else { return current }
            switch text {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw KTConfigError(code: .invalidValue, key: name.uppercased(), detail: "expected true or false, got '\(text)'")
            }
        }
        func sslMode(_ name: String) throws(KTConfigError) -> SSLMode? {
            guard let text = string(name) else { return nil }
            guard let mode = SSLMode(text) else {
                throw KTConfigError(code: .invalidValue, key: name.uppercased(), detail: "unsupported sslmode '\(text)'")
            }
            return mode
        }
        func pool(_ prefix: String, _ current: PoolSettings) throws(KTConfigError) -> PoolSettings {
            PoolSettings(
                size: try int("\(prefix)_pool_size", current.size),
                maxOverflow: try int("\(prefix)_max_overflow", current.maxOverflow),
                timeout: try seconds("\(prefix)_pool_timeout", current.timeout),
                recycle: try seconds("\(prefix)_pool_recycle", current.recycle)
            )
        }

        if let text = string("database_url") { databaseURL = try DatabaseURL.setting(text, key: "DATABASE_URL") }
        if let text = string("write_database_url") { writeDatabaseURL = try DatabaseURL.setting(text, key: "WRITE_DATABASE_URL") }
        dbSSLMode = try sslMode("db_sslmode")
        writeDBSSLMode = try sslMode("write_db_sslmode")
        graphPool = try pool("db", graphPool)
        writePool = try pool("write_db", writePool)
        dbPgBouncer = try bool("db_pgbouncer", dbPgBouncer)
        writeDBPgBouncer = try bool("write_db_pgbouncer", writeDBPgBouncer)
        for name in sources.variableNames.sorted() where name.hasPrefix("MULTIGRAPH_") {
            loadIssues.append(SettingsIssue(key: name, message: Self.retiredMultigraphMessage))
        }
        qdrant.url = string("qdrant_url") ?? qdrant.url
        qdrant.timeout = try seconds("qdrant_timeout", qdrant.timeout)
        qdrant.tls = try bool("qdrant_tls", qdrant.tls)
        qdrant.apiKey = string("qdrant_api_key").map(Secret.init)
        embeddingDimensions = try int("embedding_dimensions", embeddingDimensions)
        if let text = string("embedding_base_url") {
            guard let url = URL(string: text), Self.isHTTPURL(url) else {
                throw KTConfigError(code: .invalidValue, key: "EMBEDDING_BASE_URL", detail: "expected an http or https URL with a host")
            }
            embeddingBaseURL = url
        }
        embeddingModel = string("embedding_model") ?? embeddingModel
        embeddingAPIKey = string("embedding_api_key").map(Secret.init)
        runMigrationsOnStartup = try bool("run_migrations_on_startup", runMigrationsOnStartup)
        sync.interval = try seconds("sync_interval_seconds", sync.interval)
        sync.batchSize = try int("sync_batch_size", sync.batchSize)
        sync.maxRetries = try int("sync_max_retries", sync.maxRetries)
        sync.retryBase = try seconds("sync_retry_base_seconds", sync.retryBase)
        sync.taskTimeout = try seconds("sync_task_timeout_minutes", sync.taskTimeout, scale: 60)
        sync.parallelism = try int("sync_parallelism", sync.parallelism)
        migrationParallelism = try int("migration_parallelism", migrationParallelism)
        if string("kt_pg_event_loops") != nil { postgresEventLoops = try int("kt_pg_event_loops", 0) }

        // graph_databases, lowest priority first: YAML section, EXTRA_DB_* discovery, GRAPH_DATABASES JSON.
        var databases = try GraphDatabaseConfig.entries(fromYAML: sources.yamlGraphDatabases)
        let discovered = try GraphDatabaseConfig.discover(names: sources.variableNames, lookup: { reader.string(forKey: ConfigKey([$0.lowercased()]), isSecret: $0.hasSuffix("PASSWORD")) })
        databases.merge(discovered.entries) { _, new in new }
        loadIssues.append(contentsOf: discovered.issues)
        if let json = string("graph_databases") {
            databases.merge(try GraphDatabaseConfig.entries(fromJSON: json)) { _, new in new }
        }
        if databases[GraphDatabases.defaultKey] != nil {
            throw KTConfigError(code: .reservedKey, key: "graph_databases.\(GraphDatabases.defaultKey)", detail: "the key '\(GraphDatabases.defaultKey)' is reserved for the system databases")
        }
        graphDatabases = databases
    }
}

/// The providers `Settings.load` reads, in priority order, plus what `ConfigReader` cannot
/// enumerate: the variable names (for `EXTRA_DB_*` discovery) and the YAML `graph_databases` map.
struct SettingsSources: Sendable {
    var reader: ConfigReader
    var variableNames: Set<String>
    var yamlGraphDatabases: [String: [String: String]]

    static func make(environment: [String: String], overrides: [String: String]) async throws(KTConfigError) -> SettingsSources {
        let secrets = SecretsSpecifier<String, String>.dynamic { name, _ in
            name.hasSuffix("PASSWORD") || name.hasSuffix("API_KEY") || name.hasSuffix("DATABASE_URL") || name == "GRAPH_DATABASES"
        }
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: overrides, secretsSpecifier: secrets),
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
        ]
        var names = Set(overrides.keys).union(environment.keys)

        let envFile = overrides["KT_ENV_FILE"] ?? environment["KT_ENV_FILE"]
        let envPath = envFile ?? ".env"
        do {
            providers.append(
                try await EnvironmentVariablesProvider(
                    environmentFilePath: FilePath(envPath), allowMissing: envFile == nil, secretsSpecifier: secrets))
        } catch {
            throw KTConfigError(code: .unreadableFile, key: "KT_ENV_FILE", detail: "cannot read the .env file at \(envPath): \(error)")
        }
        names.formUnion(DotEnvNames.read(path: envPath))

        let yamlFile = overrides["KT_CONFIG_FILE"] ?? environment["KT_CONFIG_FILE"]
        let yamlPath = yamlFile ?? "config.yaml"
        var yamlGraphDatabases: [String: [String: String]] = [:]
        do {
            let yaml = try await FileProvider<YAMLSnapshot>(filePath: FilePath(yamlPath), allowMissing: yamlFile == nil)
            let paths = Dictionary(uniqueKeysWithValues: Settings.keys.map { ($0.name, $0.yamlPath) })
            providers.append(
                yaml.mapKeys { key in
                    guard key.components.count == 1, let path = paths[key.components[0]] else {
                        return AbsoluteConfigKey(["__kt_unmapped__"] + key.components)
                    }
                    return AbsoluteConfigKey(path)
                })
            yamlGraphDatabases = try YAMLGraphDatabases.read(path: yamlPath)
        } catch let error as KTConfigError {
            throw error
        } catch {
            throw KTConfigError(code: .unreadableFile, key: "KT_CONFIG_FILE", detail: "cannot read the YAML file at \(yamlPath): \(error)")
        }
        return SettingsSources(reader: ConfigReader(providers: providers), variableNames: names, yamlGraphDatabases: yamlGraphDatabases)
    }
}

/// Reads only the variable names of a `.env` file (the values are read through swift-configuration).
enum DotEnvNames {
    static func read(path: String) -> Set<String> {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return [] }
        var names = Set<String>()
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "=") else { continue }
            names.insert(line[..<eq].trimmingCharacters(in: .whitespaces))
        }
        return names
    }
}
