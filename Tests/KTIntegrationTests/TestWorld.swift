import Foundation
import KTConfig
import KTCore
import KTDB
import KTProvision
import KTQdrant
import Logging

struct TestWorld: Sendable {
    var settings: Settings
    var controlPlane: DatabaseSession
    var systemGraph: DatabaseURL
    var systemWrite: DatabaseURL
    var externalGraph: DatabaseURL
    var externalWrite: DatabaseURL

    /// Fresh system and external database pairs, a migrated control plane, a `database_connections`
    /// row `shared` configured in settings (external pair, external Qdrant) and a row `broken`
    /// whose settings entry points at a closed port.
    static func with<T: Sendable>(logger: Logger, _ body: (TestWorld) async throws -> T) async throws -> T {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemGraphURL) { systemGraph in
            try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemWriteURL) { systemWrite in
                try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.externalGraphURL) { externalGraph in
                    try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.externalWriteURL) { externalWrite in
                        var settings = Settings()
                        settings.databaseURL = systemGraph
                        settings.writeDatabaseURL = systemWrite
                        settings.qdrant.url = TestEnvironment.variables["KT_TEST_QDRANT_URL"] ?? ""
                        settings.embeddingDimensions = 8
                        settings.graphDatabases["shared"] = GraphDatabaseConfig(
                            graphDatabaseURL: externalGraph, writeDatabaseURL: externalWrite,
                            qdrantURL: TestEnvironment.variables["KT_TEST_EXTERNAL_QDRANT_URL"])
                        var closed = externalGraph
                        closed.port = try QdrantLocalServer.freePort()
                        settings.graphDatabases["broken"] = GraphDatabaseConfig(graphDatabaseURL: closed, writeDatabaseURL: closed)
                        try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(systemGraph), logger: logger) {
                            try await Migrator.migrate([.controlPlane], schema: .public, on: $0, logger: logger)
                        }
                        return try await TestEnvironment.withPool(systemGraph) { pool in
                            let controlPlane = DatabaseSession(pool: pool)
                            let repository = GraphRepository(controlPlane, logger: logger)
                            try await repository.createDatabaseConnection(name: "Shared", configKey: "shared")
                            try await repository.createDatabaseConnection(name: "Broken", configKey: "broken")
                            return try await body(
                                TestWorld(
                                    settings: settings, controlPlane: controlPlane, systemGraph: systemGraph, systemWrite: systemWrite,
                                    externalGraph: externalGraph, externalWrite: externalWrite))
                        }
                    }
                }
            }
        }
    }

    /// A new user with an API token (a superuser unless `superuser` is false); returns the token.
    func token(email: String = "root@example.org", superuser: Bool = true, logger: Logger) async throws -> String {
        let users = UserRepository(controlPlane, logger: logger)
        let user = try await users.createUser(email: email, isSuperuser: superuser)
        return try await users.issueToken(userID: user.id).token.revealedValue
    }
}
