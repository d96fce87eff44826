import Foundation
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTQdrant
import Logging
import Testing

@Suite("Settings loading")
struct SettingsLoadingTests {
    let logger = Logger(label: "kt-config-tests")

    /// A scratch folder with optional .env and YAML files; loading never reads the working directory's files.
    func files(env: String? = nil, yaml: String? = nil) throws -> [String: String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kt-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var vars: [String: String] = [:]
        let envPath = dir.appendingPathComponent(".env").path
        try (env ?? "").write(toFile: envPath, atomically: true, encoding: .utf8)
        vars["KT_ENV_FILE"] = envPath
        let yamlPath = dir.appendingPathComponent("config.yaml").path
        try (yaml ?? "{}\n").write(toFile: yamlPath, atomically: true, encoding: .utf8)
        vars["KT_CONFIG_FILE"] = yamlPath
        return vars
    }

    @Test("defaults match the original system")
    func defaults() async throws {
        let settings = try await Settings.load(environment: try files(), logger: logger)
        #expect(settings.databaseURL == Settings.defaultDatabaseURL)
        #expect(settings.graphPool == PoolSettings(size: 20, maxOverflow: 40, timeout: .seconds(30), recycle: .seconds(1800)))
        #expect(settings.writePool == PoolSettings(size: 100, maxOverflow: 700, timeout: .seconds(120), recycle: .seconds(600)))
        #expect(settings.dbPgBouncer == false)
        #expect(settings.writeDBPgBouncer == true)
        #expect(settings.qdrant.url == "http://localhost:6333")
        #expect(settings.embeddingDimensions == 3072)
        #expect(settings.sync.batchSize == 1000)
        #expect(settings.graphDatabases.isEmpty)
        #expect(settings.validate().isEmpty)
    }

    @Test("precedence: explicit > env > .env > YAML > defaults")
    func precedence() async throws {
        var env = try files(
            env: "DB_POOL_SIZE=3\nDB_MAX_OVERFLOW=4\nSYNC_BATCH_SIZE=5\n",
            yaml: """
                infrastructure:
                  db_pool_size: 7
                  db_max_overflow: 8
                  sync_batch_size: 9
                  db_pool_timeout: 11
                embeddings:
                  dimensions: 384
                """)
        env["DB_POOL_SIZE"] = "2"
        env["DB_MAX_OVERFLOW"] = "6"
        let settings = try await Settings.load(environment: env, overrides: ["DB_POOL_SIZE": "1"], logger: logger)
        #expect(settings.graphPool.size == 1)  // explicit
        #expect(settings.graphPool.maxOverflow == 6)  // env over .env and YAML
        #expect(settings.sync.batchSize == 5)  // .env over YAML
        #expect(settings.graphPool.timeout == .seconds(11))  // YAML over default
        #expect(settings.embeddingDimensions == 384)
        #expect(settings.writePool.size == 100)  // default
    }

    @Test("URLs are normalised and SSL modes read")
    func urls() async throws {
        var env = try files()
        env["DATABASE_URL"] = "postgresql+asyncpg://kt:p%40ss@db:5432/kt?ssl=require"
        env["WRITE_DATABASE_URL"] = "postgres://kt:pw@bouncer:6432/kt_write"
        env["DB_SSLMODE"] = "verify-full"
        let settings = try await Settings.load(environment: env, logger: logger)
        #expect(settings.databaseURL.password?.revealedValue == "p@ss")
        #expect(settings.databaseURL.sslMode == .require)
        #expect(settings.writeDatabaseURL.port == 6432)
        #expect(settings.effectiveWriteSSLMode == .verifyFull)
    }

    @Test("the PostgreSQL event loop count is configuration: unset by default, KT_PG_EVENT_LOOPS sets it, outside 1-64 it is a validation issue")
    func eventLoops() async throws {
        #expect(try await Settings.load(environment: try files(), logger: logger).postgresEventLoops == nil)
        var env = try files()
        env["KT_PG_EVENT_LOOPS"] = "3"
        #expect(try await Settings.load(environment: env, logger: logger).postgresEventLoops == 3)
        env["KT_PG_EVENT_LOOPS"] = "0"
        #expect(try await Settings.load(environment: env, logger: logger).validate().map(\.key).contains("kt_pg_event_loops"))
    }

    @Test("a malformed value is an error naming the key")
    func invalidValue() async throws {
        var env = try files()
        env["DB_POOL_SIZE"] = "twenty"
        await #expect(throws: KTConfigError.self) { try await Settings.load(environment: env, logger: logger) }
        do {
            _ = try await Settings.load(environment: env, logger: logger)
        } catch {
            #expect(error.key == "DB_POOL_SIZE")
        }
    }

    @Test("GRAPH_DATABASES JSON is parsed, unknown fields rejected")
    func graphDatabasesJSON() async throws {
        var env = try files()
        env["GRAPH_DATABASES"] =
            #"{"shared": {"graph_database_url": "postgresql+asyncpg://kt:pw@g:5432/shared", "write_database_url": "postgresql://kt:pw@w:5432/shared_w", "qdrant_url": "http://q:6333", "graph_pool_size": 5}}"#
        let settings = try await Settings.load(environment: env, logger: logger)
        let shared = try settings.graphDatabase(forKey: "shared")
        #expect(shared.graphDatabaseURL.host == "g")
        #expect(shared.writeDatabaseURL.database == "shared_w")
        #expect(shared.qdrantURL == "http://q:6333")
        #expect(shared.graphPool.size == 5)
        #expect(shared.writePool == .writeDefault)

        env["GRAPH_DATABASES"] = #"{"shared": {"graph_database_url": "postgresql://g/x", "write_database_url": "postgresql://w/y", "graph_pool_sise": 5}}"#
        await #expect(throws: KTConfigError.self) { try await Settings.load(environment: env, logger: logger) }
    }

    @Test("EXTRA_DB_* discovery: key naming, port, defaults; incomplete entries reported")
    func extraDatabases() async throws {
        var env = try files(env: "EXTRA_DB_FROM_FILE_GRAPH_HOST=fg\nEXTRA_DB_FROM_FILE_GRAPH_DATABASE=fgd\nEXTRA_DB_FROM_FILE_WRITE_HOST=fw\nEXTRA_DB_FROM_FILE_WRITE_DATABASE=fwd\n")
        env["EXTRA_DB_MY_DB_GRAPH_HOST"] = "gh"
        env["EXTRA_DB_MY_DB_GRAPH_PORT"] = "6543"
        env["EXTRA_DB_MY_DB_GRAPH_DATABASE"] = "gdb"
        env["EXTRA_DB_MY_DB_GRAPH_PASSWORD"] = "s3cr%t"
        env["EXTRA_DB_MY_DB_WRITE_HOST"] = "wh"
        env["EXTRA_DB_MY_DB_WRITE_DATABASE"] = "wdb"
        env["EXTRA_DB_MY_DB_QDRANT_URL"] = "http://qd:6333"
        env["EXTRA_DB_BROKEN_GRAPH_HOST"] = "x"
        env["EXTRA_DB_BROKEN_WRITE_HOST"] = "y"
        let settings = try await Settings.load(environment: env, logger: logger)
        let entry = try settings.graphDatabase(forKey: "my-db")
        #expect(entry.graphDatabaseURL.port == 6543)
        #expect(entry.graphDatabaseURL.user == "kt")
        #expect(entry.graphDatabaseURL.password?.revealedValue == "s3cr%t")
        #expect(entry.writeDatabaseURL.port == 5432)
        #expect(entry.qdrantURL == "http://qd:6333")
        #expect(settings.graphDatabases["from-file"] != nil)
        #expect(settings.graphDatabases["broken"] == nil)
        let issues = settings.validate()
        #expect(issues.count == 1)
        #expect(issues.first?.key == "EXTRA_DB_BROKEN")
        #expect(issues.first?.message.contains("EXTRA_DB_BROKEN_GRAPH_DATABASE") == true)
        #expect(!settings.description.contains("s3cr%t"))
    }

    @Test("transaction-pooler flags: system pair, GRAPH_DATABASES JSON, YAML and EXTRA_DB_*; a bad flag names its key")
    func poolerFlags() async throws {
        var env = try files(
            yaml: """
                graph_databases:
                  yaml-pair:
                    graph_database_url: postgresql://kt@g/yg
                    write_database_url: postgresql://kt@w/yw
                    graph_pgbouncer: true
                    write_pgbouncer: false
                """)
        env["DB_PGBOUNCER"] = "true"
        env["WRITE_DB_PGBOUNCER"] = "false"
        env["GRAPH_DATABASES"] = #"{"json-pair": {"graph_database_url": "postgresql://kt@g/jg", "write_database_url": "postgresql://kt@w/jw", "graph_pgbouncer": true}}"#
        env["EXTRA_DB_ENV_PAIR_GRAPH_HOST"] = "eg"
        env["EXTRA_DB_ENV_PAIR_GRAPH_DATABASE"] = "egd"
        env["EXTRA_DB_ENV_PAIR_WRITE_HOST"] = "ew"
        env["EXTRA_DB_ENV_PAIR_WRITE_DATABASE"] = "ewd"
        env["EXTRA_DB_ENV_PAIR_WRITE_PGBOUNCER"] = "no"
        let settings = try await Settings.load(environment: env, logger: logger)
        #expect(settings.dbPgBouncer && !settings.writeDBPgBouncer)
        #expect(settings.graphDatabases["yaml-pair"]?.graphPgBouncer == true && settings.graphDatabases["yaml-pair"]?.writePgBouncer == false)
        #expect(settings.graphDatabases["json-pair"]?.graphPgBouncer == true && settings.graphDatabases["json-pair"]?.writePgBouncer == true)
        #expect(settings.graphDatabases["env-pair"]?.graphPgBouncer == false && settings.graphDatabases["env-pair"]?.writePgBouncer == false)

        var bad = try files()
        bad["WRITE_DB_PGBOUNCER"] = "maybe"
        await #expect { _ = try await Settings.load(environment: bad, logger: logger) } throws: { ($0 as? KTConfigError)?.key == "WRITE_DB_PGBOUNCER" }
        bad = try files()
        bad["GRAPH_DATABASES"] = #"{"p": {"graph_database_url": "postgresql://kt@g/jg", "write_database_url": "postgresql://kt@w/jw", "write_pgbouncer": "sometimes"}}"#
        await #expect { _ = try await Settings.load(environment: bad, logger: logger) } throws: { ($0 as? KTConfigError)?.detail.contains("write_pgbouncer") == true }
    }

    @Test("MULTIGRAPH_* pool settings are retired: reported as an issue that says what sizes pools now")
    func retiredMultigraph() async throws {
        var env = try files()
        env["MULTIGRAPH_DB_POOL_SIZE"] = "5"
        let settings = try await Settings.load(environment: env, logger: logger)
        let issue = try #require(settings.validate().first { $0.key == "MULTIGRAPH_DB_POOL_SIZE" })
        #expect(issue.message.contains("retired") && issue.message.contains("DB_POOL_"))
    }

    @Test("the YAML graph_databases section is read (the original ignored it)")
    func yamlGraphDatabases() async throws {
        let env = try files(
            yaml: """
                graph_databases:
                  archive:
                    graph_database_url: postgresql://kt:pw@ag:5432/archive
                    write_database_url: postgresql://kt:pw@aw:5432/archive_w
                    write_pool_size: 12
                """)
        let settings = try await Settings.load(environment: env, logger: logger)
        #expect(try settings.graphDatabase(forKey: "archive").writePool.size == 12)
    }

    @Test("the reserved key 'default' is a configuration error from every source")
    func reservedKey() async throws {
        var env = try files()
        env["GRAPH_DATABASES"] = #"{"default": {"graph_database_url": "postgresql://g/x", "write_database_url": "postgresql://w/y"}}"#
        do {
            _ = try await Settings.load(environment: env, logger: logger)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .reservedKey)
        }
        var env2 = try files()
        for side in ["GRAPH", "WRITE"] {
            env2["EXTRA_DB_DEFAULT_\(side)_HOST"] = "h"
            env2["EXTRA_DB_DEFAULT_\(side)_DATABASE"] = "d"
        }
        await #expect(throws: KTConfigError.self) { try await Settings.load(environment: env2, logger: logger) }

        var settings = Settings()
        settings.graphDatabases[GraphDatabases.defaultKey] = GraphDatabaseConfig(
            graphDatabaseURL: Settings.defaultDatabaseURL, writeDatabaseURL: Settings.defaultWriteDatabaseURL)
        #expect(settings.validate().contains { $0.key.hasSuffix(GraphDatabases.defaultKey) })
        #expect(throws: KTConfigError.self) { try settings.graphDatabase(forKey: GraphDatabases.defaultKey) }
    }

    @Test("an unknown connection key names the EXTRA_DB variables to set")
    func unknownConnectionKey() {
        do {
            _ = try Settings().graphDatabase(forKey: "shared-2")
            Issue.record("expected an error")
        } catch {
            #expect(error.detail.contains("EXTRA_DB_SHARED_2_GRAPH_HOST"))
        }
    }

    @Test("description redacts passwords and the Qdrant API key")
    func redaction() async throws {
        var env = try files()
        env["DATABASE_URL"] = "postgresql://kt:topsecret1@h/db"
        env["WRITE_DATABASE_URL"] = "postgresql://kt:topsecret2@h/db"
        env["QDRANT_API_KEY"] = "topsecret3"
        env["EMBEDDING_BASE_URL"] = "https://api.example.org/v1"
        env["EMBEDDING_API_KEY"] = "topsecret6"
        env["GRAPH_DATABASES"] = #"{"x": {"graph_database_url": "postgresql://kt:topsecret4@g/x", "write_database_url": "postgresql://kt:topsecret5@w/y"}}"#
        let settings = try await Settings.load(environment: env, logger: logger)
        #expect(settings.qdrant.apiKey?.revealedValue == "topsecret3")
        #expect(settings.embeddingAPIKey?.revealedValue == "topsecret6")
        for text in [settings.description, String(reflecting: settings), "\(settings)"] {
            #expect(!text.contains("topsecret"))
        }
    }

    @Test("the embedding service: local by default; base URL, model and key from env or YAML; a bad URL names its key")
    func embeddingSettings() async throws {
        let defaults = try await Settings.load(environment: try files(), logger: logger)
        #expect(defaults.embeddingBaseURL == nil && defaults.embeddingModel == "text-embedding-3-large" && defaults.embeddingAPIKey == nil)
        let yaml = try await Settings.load(
            environment: try files(
                yaml: """
                    embeddings:
                      dimensions: 1536
                      base_url: http://127.0.0.1:11434/v1
                      model: nomic-embed-text
                      api_key: yaml-key
                    """), logger: logger)
        #expect(yaml.embeddingBaseURL == URL(string: "http://127.0.0.1:11434/v1"))
        #expect(yaml.embeddingModel == "nomic-embed-text" && yaml.embeddingAPIKey == Secret("yaml-key") && yaml.embeddingDimensions == 1536)
        #expect(yaml.validate().isEmpty)
        var env = try files(yaml: "embeddings:\n  model: from-yaml\n")
        env["EMBEDDING_MODEL"] = "from-env"
        #expect(try await Settings.load(environment: env, logger: logger).embeddingModel == "from-env")
        for bad in ["ftp://example.org/v1", "not a url", "https://"] {
            var env = try files()
            env["EMBEDDING_BASE_URL"] = bad
            let error = await #expect(throws: KTConfigError.self) { try await Settings.load(environment: env, logger: logger) }
            #expect(error?.code == .invalidValue && error?.key == "EMBEDDING_BASE_URL")
        }
        var built = Settings()
        built.embeddingBaseURL = URL(string: "file:///tmp/x")
        built.embeddingModel = " "
        #expect(Set(built.validate().map(\.key)) == ["embedding_base_url", "embedding_model"])
    }

    @Test("an explicitly named file that is missing is an error")
    func missingFile() async throws {
        await #expect(throws: KTConfigError.self) {
            try await Settings.load(environment: ["KT_CONFIG_FILE": "/nonexistent/kt.yaml"], logger: logger)
        }
    }

    @Test("the reserved key is one constant")
    func reservedConstant() {
        #expect(GraphDatabases.defaultKey == "default")
        #expect(GraphDatabases.isSystemKey(nil))
        #expect(GraphDatabases.isSystemKey("default"))
        #expect(!GraphDatabases.isSystemKey("shared"))
    }
}
