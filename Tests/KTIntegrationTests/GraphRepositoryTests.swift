import Foundation
import KTConfig
import KTCore
import KTDB
import KTProvision
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
            } catch let error as KTProvisionError {
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
            await #expect(throws: KTProvisionError.self) { try await repository.addMember(graphID: graph.id, userID: user) }
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
            } catch let error as KTProvisionError {
                #expect(error.code == .reservedKey)
            }
            // Even raw SQL cannot insert the reserved key.
            await #expect(throws: KTDBError.self) {
                try await session.query("INSERT INTO database_connections (id, name, config_key) VALUES (\(UUID()), \("x"), \("default"))", logger: logger)
            }
            let shared = try await repository.createDatabaseConnection(name: "Shared", configKey: "shared")
            try await repository.createDatabaseConnection(name: "Archive", configKey: "archive")
            await #expect(throws: KTProvisionError.self) { try await repository.createDatabaseConnection(name: "Shared", configKey: "other") }
            #expect(try await repository.listDatabaseConnections().map(\.name) == ["Archive", "Shared"])
            #expect(try await repository.databaseConnection(configKey: "shared")?.id == shared.id)
            #expect(try await repository.databaseConnection(id: shared.id)?.configKey == "shared")
            #expect(try await repository.reservedKeyConnections().isEmpty)
        }
    }

    @Test("users and tokens: only the SHA-256 digest is stored; authenticate finds active users; limits and bad input")
    func usersAndTokens() async throws {
        try await withControlPlane { session in
            let users = UserRepository(session, logger: logger)
            let user = try await users.createUser(email: " Carol@Example.org ", isSuperuser: true)
            #expect(user.email == "carol@example.org")
            #expect(user.isSuperuser)
            await #expect(throws: KTProvisionError.self) { try await users.createUser(email: "carol@example.org") }
            for bad in ["no-at-sign", "@example.org", "carol@", "a b@example.org"] {
                await #expect(throws: KTProvisionError.self) { try await users.createUser(email: bad) }
            }

            let issued = try await users.issueToken(userID: user.id, graphSlugs: ["news"])
            let token = issued.token.revealedValue
            #expect(token.hasPrefix("kt_"))
            #expect(token.count == 46)
            #expect(!"\(issued.token)".contains(token))
            let stored = try await session.query("SELECT token_hash FROM api_tokens WHERE id = \(issued.id)", logger: logger)
                .first?.decode(0, as: String.self)
            #expect(stored?.count == 64)
            #expect(stored != token)
            #expect(try await session.query("SELECT count(*) FROM api_tokens WHERE token_hash = \(token)", logger: logger).first?.decode(0, as: Int.self) == 0)

            let authenticated = try #require(try await users.authenticate(token: token))
            #expect(authenticated.user.id == user.id)
            #expect(authenticated.graphSlugs == ["news"])
            #expect(authenticated.tokenAllows(slug: "news"))
            #expect(!authenticated.tokenAllows(slug: "other"))
            #expect(try await users.authenticate(token: token + "x") == nil)
            #expect(try await users.authenticate(token: "not-a-token") == nil)

            try await session.query("UPDATE \"user\" SET is_active = false WHERE id = \(user.id)", logger: logger)
            #expect(try await users.authenticate(token: token) == nil)
            await #expect(throws: KTProvisionError.self) { try await users.issueToken(userID: UUID()) }
        }
    }

    @Test("the last admin can be neither demoted nor removed, also when two demotions race")
    func lastAdminGuard() async throws {
        try await withControlPlane { session in
            let repository = GraphRepository(session, logger: logger)
            let alice = try await makeUser(session, email: "alice@example.org")
            let bob = try await makeUser(session, email: "bob@example.org")
            let graph = try await repository.create(slug: try GraphSlug("team"), name: "Team")
            try await repository.addMember(graphID: graph.id, userID: alice, role: .admin)
            try await repository.addMember(graphID: graph.id, userID: bob, role: .admin)

            // Two concurrent demotions of the two admins: the row locks serialise them, one fails.
            async let first: Result<GraphMember?, any Error> = {
                do { return .success(try await repository.changeMemberRole(graphID: graph.id, userID: alice, role: .reader)) } catch { return .failure(error) }
            }()
            async let second: Result<GraphMember?, any Error> = {
                do { return .success(try await repository.changeMemberRole(graphID: graph.id, userID: bob, role: .reader)) } catch { return .failure(error) }
            }()
            let results = await [first, second]
            let failures = results.compactMap { result -> KTProvisionError? in
                if case .failure(let error) = result { return error as? KTProvisionError }
                return nil
            }
            #expect(failures.count == 1)
            #expect(failures.first?.code == .lastAdmin)
            let admins = try await repository.members(graphID: graph.id).filter { $0.role == .admin }
            #expect(admins.count == 1)
            let lastAdmin = try #require(admins.first?.userID)

            let removeError = await #expect(throws: KTProvisionError.self) {
                try await repository.removeMemberKeepingAnAdmin(graphID: graph.id, userID: lastAdmin)
            }
            #expect(removeError?.code == .lastAdmin)
            let other = lastAdmin == alice ? bob : alice
            #expect(try await repository.removeMemberKeepingAnAdmin(graphID: graph.id, userID: other))
            #expect(try await repository.removeMemberKeepingAnAdmin(graphID: graph.id, userID: other) == false)
            #expect(try await repository.changeMemberRole(graphID: graph.id, userID: UUID(), role: .writer) == nil)
            #expect(try await repository.memberCounts(graphIDs: [graph.id, UUID()]) == [graph.id: 1])
        }
    }
}
