import Foundation
import KTConfig
import KTDB
import Logging
import Testing

@Suite("GraphRepository (real PostgreSQL)", .enabled(if: TestEnvironment.isEnabled))
struct GraphRepositoryTests {
    let logger = TestEnvironment.logger

    /// A fresh, migrated control plane; `body` gets a session on its public schema.
    func withControlPlane<T: Sendable>(_ body: (DatabaseSession) async throws -> T) async throws -> T {
        try await TestEnvironment.withFreshDatabase(on: try TestEnvironment.systemGraphURL) { url in
            try await PostgresConnection.withConnection(configuration: TestEnvironment.connectionConfiguration(url), logger: logger) {
                try await Migrator.migrate([.controlPlane], schema: .public, on: $0, logger: logger)
            }
            return try await TestEnvironment.withPool(url) { try await body(DatabaseSession(pool: $0)) }
        }
    }

    func makeUser(_ session: DatabaseSession, email: String) async throws -> UUID {
        let id = UUID()
        try await session.query("INSERT INTO \"user\" (id, email) VALUES (\(id), \(email))", logger: logger)
        return id
    }

    @Test("graphs: default seeded, create, conflict on a taken slug, get, update only given fields, list accessible")
    func graphs() async throws {
        try await withControlPlane { session in
            let repository = GraphRepository(session, logger: logger)
            let defaultGraph = try await repository.defaultGraph()
            #expect(defaultGraph.slug == "default")
            #expect(defaultGraph.schemaName == "public")

            let alice = try await makeUser(session, email: "alice@example.org")
            let bob = try await makeUser(session, email: "bob@example.org")
            let zeta = try await repository.create(slug: try GraphSlug("zeta"), name: "Zeta", createdBy: alice)
            #expect(zeta.status == .provisioning)
            #expect(zeta.schemaName == "graph_zeta")
            #expect(zeta.databaseConnectionID == nil)
            let alpha = try await repository.create(slug: try GraphSlug("alpha"), name: "Alpha", description: "first")
            do {
                _ = try await repository.create(slug: try GraphSlug("zeta"), name: "Again")
                Issue.record("expected a conflict")
            } catch let error as KTDBError {
                #expect(error.code == .conflict)
            }

            let updated = try #require(try await repository.update(id: alpha.id, status: .active))
            #expect(updated.status == .active)
            #expect(updated.name == "Alpha")
            #expect(updated.description == "first")
            #expect(try await repository.update(id: UUID(), name: "x") == nil)

            #expect(try await repository.listAccessible(userID: nil, isSuperuser: true).map(\.slug) == ["default", "alpha", "zeta"])
            #expect(try await repository.listAccessible(userID: bob, isSuperuser: false).map(\.slug) == ["default"])
            try await repository.addMember(graphID: zeta.id, userID: bob, role: .writer)
            #expect(try await repository.listAccessible(userID: bob, isSuperuser: false).map(\.slug) == ["default", "zeta"])

            try await repository.update(id: zeta.id, status: .deleted)
            #expect(try await repository.listAccessible(userID: bob, isSuperuser: false).map(\.slug) == ["default"])
            #expect(try await repository.graph(slug: "zeta")?.status == .deleted)  // a deleted graph keeps its slug
            #expect(try await repository.graph(id: alpha.id)?.slug == "alpha")
        }
    }

    @Test("members: add, role, change, remove; duplicates conflict")
    func members() async throws {
        try await withControlPlane { session in
            let repository = GraphRepository(session, logger: logger)
            let user = try await makeUser(session, email: "carol@example.org")
            let graph = try await repository.create(slug: try GraphSlug("team"), name: "Team")
            try await repository.addMember(graphID: graph.id, userID: user)
            #expect(try await repository.memberRole(graphID: graph.id, userID: user) == .reader)
            await #expect(throws: KTDBError.self) { try await repository.addMember(graphID: graph.id, userID: user) }
            #expect(try await repository.updateMemberRole(graphID: graph.id, userID: user, role: .admin)?.role == .admin)
            #expect(try await repository.members(graphID: graph.id).map(\.userID) == [user])
            #expect(try await repository.removeMember(graphID: graph.id, userID: user))
            #expect(try await repository.removeMember(graphID: graph.id, userID: user) == false)
            #expect(try await repository.updateMemberRole(graphID: graph.id, userID: user, role: .admin) == nil)
        }
    }

    @Test("database connections: 'default' rejected by the repository and by the table; ordered by name; duplicates conflict")
    func databaseConnections() async throws {
        try await withControlPlane { session in
            let repository = GraphRepository(session, logger: logger)
            do {
                try await repository.createDatabaseConnection(name: "System", configKey: GraphDatabases.defaultKey)
                Issue.record("expected reservedKey")
            } catch let error as KTDBError {
                #expect(error.code == .reservedKey)
            }
            // Even raw SQL cannot insert the reserved key.
            await #expect(throws: KTDBError.self) {
                try await session.query("INSERT INTO database_connections (id, name, config_key) VALUES (\(UUID()), \("x"), \("default"))", logger: logger)
            }
            let shared = try await repository.createDatabaseConnection(name: "Shared", configKey: "shared")
            try await repository.createDatabaseConnection(name: "Archive", configKey: "archive")
            await #expect(throws: KTDBError.self) { try await repository.createDatabaseConnection(name: "Shared", configKey: "other") }
            #expect(try await repository.listDatabaseConnections().map(\.name) == ["Archive", "Shared"])
            #expect(try await repository.databaseConnection(configKey: "shared")?.id == shared.id)
            #expect(try await repository.databaseConnection(id: shared.id)?.configKey == "shared")
            #expect(try await repository.reservedKeyConnections().isEmpty)
        }
    }
}
