public import Foundation
import KTConfig
public import KTDB
public import Logging

/// The control-plane repository: graphs, members and database connections, in the `public`
/// schema of the system graph-db.
///
/// Each call runs on the ``PostgresQueryRunner`` it was built with: build it on a
/// ``PostgresTransaction`` to make several calls atomic, or on a ``DatabaseSession`` for
/// one transaction per call.
public struct GraphRepository: Sendable {
    let runner: any PostgresQueryRunner
    let logger: Logger

    /// Creates a repository on `runner`.
    public init(_ runner: any PostgresQueryRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    static let graphColumns = """
        id, slug, name, description, is_default, contribute_to_public, use_public_cache, graph_type, byok_enabled,
        storage_mode, schema_name, database_connection_id, status, created_by, created_at, updated_at, schema_error,
        provisioning_steps, provisioning_error, move_target, move_phase, move_source
        """

    func graphs(_ query: PostgresQuery) async throws -> [Graph] {
        try await runner.run(query, logger: logger).rows.map { row throws(KTDBError) in try Graph(row: row) }
    }

    // MARK: Graphs

    /// The graph with `id`, or `nil`.
    public func graph(id: UUID) async throws -> Graph? {
        try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE id = \(id)").first
    }

    /// The graph with `slug`, or `nil`. Includes deleted graphs (a slug stays taken after a soft delete).
    public func graph(slug: String) async throws -> Graph? {
        try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE slug = \(slug)").first
    }

    /// The default graph (seeded by the control-plane migration).
    public func defaultGraph() async throws -> Graph {
        guard let graph = try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE is_default").first else {
            throw KTProvisionError(code: .notFound, message: "no default graph: run the control-plane migration")
        }
        return graph
    }

    /// Graphs a user may see, not deleted: a superuser sees all; others see the default graph
    /// and the graphs they are members of. Default first, then by name.
    public func listAccessible(userID: UUID?, isSuperuser: Bool) async throws -> [Graph] {
        if isSuperuser {
            return try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE status <> 'deleted' ORDER BY is_default DESC, name")
        }
        return try await graphs(
            """
            SELECT \(unsafeRaw: Self.graphColumns) FROM graphs g
            WHERE g.status <> 'deleted'
              AND (g.is_default OR EXISTS (SELECT 1 FROM graph_members m WHERE m.graph_id = g.id AND m.user_id = \(userID)))
            ORDER BY g.is_default DESC, g.name
            """)
    }

    /// Graphs that serve: active, or moving (served from their source until the switch), for
    /// startup migration, routing and the sync.
    public func listActive() async throws -> [Graph] {
        try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE status IN ('active', 'moving') ORDER BY is_default DESC, slug")
    }

    /// Graphs in a status (for example those stuck in `provisioning`).
    public func list(status: GraphStatus) async throws -> [Graph] {
        try await graphs("SELECT \(unsafeRaw: Self.graphColumns) FROM graphs WHERE status = \(status.rawValue) ORDER BY slug")
    }

    /// Inserts a graph with schema `graph_<slug>` and status `provisioning`, provisioned by
    /// `provisioningOwner` as of now (see ``heartbeat(graphID:owner:)``).
    ///
    /// - Throws: ``KTDBError/Code/conflict`` when the slug is taken (even by a deleted graph).
    public func create(
        slug: GraphSlug, name: String, description: String? = nil, databaseConnectionID: UUID? = nil,
        createdBy: UUID? = nil, graphType: String = "v1", byokEnabled: Bool = false,
        contributeToPublic: Bool = true, usePublicCache: Bool = true, provisioningOwner: UUID? = nil
    ) async throws -> Graph {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.unicodeScalars.count <= 200 else {
            throw KTProvisionError(code: .invalidArgument, message: "a graph name has 1 to 200 characters")
        }
        let id = UUID()
        let query: PostgresQuery = """
            INSERT INTO graphs (id, slug, name, description, graph_type, byok_enabled, storage_mode, schema_name,
                                database_connection_id, status, created_by, contribute_to_public, use_public_cache,
                                provisioning_owner, provisioning_heartbeat_at)
            VALUES (\(id), \(slug.rawValue), \(name), \(description), \(graphType), \(byokEnabled), \("schema"), \(slug.schemaName.rawValue),
                    \(databaseConnectionID), \(GraphStatus.provisioning.rawValue), \(createdBy), \(contributeToPublic), \(usePublicCache),
                    \(provisioningOwner), clock_timestamp())
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        do {
            return try Graph(row: try await runner.run(query, logger: logger).rows[0])
        } catch let error as KTDBError where error.isUniqueViolation {
            throw KTProvisionError(code: .conflict, message: "a graph with slug '\(slug)' already exists")
        }
    }

    /// Updates only the given fields and `updated_at`; returns the updated graph, or `nil` if absent.
    @discardableResult
    public func update(
        id: UUID, name: String? = nil, description: String? = nil, status: GraphStatus? = nil,
        contributeToPublic: Bool? = nil, usePublicCache: Bool? = nil
    ) async throws -> Graph? {
        let query: PostgresQuery = """
            UPDATE graphs SET
                name = COALESCE(\(name), name),
                description = COALESCE(\(description), description),
                status = COALESCE(\(status?.rawValue), status),
                contribute_to_public = COALESCE(\(contributeToPublic), contribute_to_public),
                use_public_cache = COALESCE(\(usePublicCache), use_public_cache),
                updated_at = now()
            WHERE id = \(id)
            RETURNING \(unsafeRaw: Self.graphColumns)
            """
        return try await graphs(query).first
    }

    /// Deletes the row for good (hard delete); members go with it.
    public func deletePermanently(id: UUID) async throws {
        try await runner.run("DELETE FROM graphs WHERE id = \(id) AND NOT is_default", logger: logger)
    }

    // MARK: Members

    /// The members of a graph, oldest first.
    public func members(graphID: UUID) async throws -> [GraphMember] {
        try await runner.run("SELECT id, graph_id, user_id, role, created_at FROM graph_members WHERE graph_id = \(graphID) ORDER BY created_at, id", logger: logger)
            .rows.map { row throws(KTDBError) in try GraphMember(row: row) }
    }

    /// A user's role in a graph, or `nil`.
    public func memberRole(graphID: UUID, userID: UUID) async throws -> GraphRole? {
        try await runner.run("SELECT role FROM graph_members WHERE graph_id = \(graphID) AND user_id = \(userID)", logger: logger)
            .first.map { row throws(KTDBError) in GraphRole(rawValue: try row.decode(0, as: String.self)) }
    }

    /// Adds a member.
    ///
    /// - Throws: ``KTDBError/Code/conflict`` when the user is already a member.
    @discardableResult
    public func addMember(graphID: UUID, userID: UUID, role: GraphRole = .reader) async throws -> GraphMember {
        do {
            let row = try await runner.run(
                """
                INSERT INTO graph_members (id, graph_id, user_id, role) VALUES (\(UUID()), \(graphID), \(userID), \(role.rawValue))
                RETURNING id, graph_id, user_id, role, created_at
                """, logger: logger
            ).rows[0]
            return try GraphMember(row: row)
        } catch let error as KTDBError where error.isUniqueViolation {
            throw KTProvisionError(code: .conflict, message: "the user is already a member of the graph")
        }
    }

    /// Changes a member's role; returns the member, or `nil` if not a member.
    @discardableResult
    public func updateMemberRole(graphID: UUID, userID: UUID, role: GraphRole) async throws -> GraphMember? {
        try await runner.run(
            """
            UPDATE graph_members SET role = \(role.rawValue) WHERE graph_id = \(graphID) AND user_id = \(userID)
            RETURNING id, graph_id, user_id, role, created_at
            """, logger: logger
        ).first.map { row throws(KTDBError) in try GraphMember(row: row) }
    }

    /// Removes a member; returns whether there was one.
    @discardableResult
    public func removeMember(graphID: UUID, userID: UUID) async throws -> Bool {
        try await runner.run("DELETE FROM graph_members WHERE graph_id = \(graphID) AND user_id = \(userID)", logger: logger).affectedRows > 0
    }

    /// The members of a graph with their e-mail address and display name, oldest first.
    public func memberDetails(graphID: UUID) async throws -> [GraphMemberDetail] {
        try await runner.run(
            """
            SELECT m.id, m.graph_id, m.user_id, m.role, m.created_at, u.email, u.display_name
            FROM graph_members m JOIN "user" u ON u.id = m.user_id
            WHERE m.graph_id = \(graphID) ORDER BY m.created_at, m.id
            """, logger: logger
        ).rows.map { row throws(KTDBError) in
            GraphMemberDetail(
                member: try GraphMember(row: row), email: try row.decode("email", as: String.self),
                displayName: try row.decode("display_name", as: String?.self))
        }
    }

    /// The number of members of each graph in `graphIDs`, in one query (absent = 0).
    public func memberCounts(graphIDs: [UUID]) async throws -> [UUID: Int] {
        guard !graphIDs.isEmpty else { return [:] }
        let ids = graphIDs.map(\.uuidString)
        var counts: [UUID: Int] = [:]
        for row in try await runner.run(
            """
            SELECT graph_id, count(*) AS n FROM graph_members WHERE graph_id = ANY(\(ids)::uuid[]) GROUP BY graph_id
            """, logger: logger
        ).rows {
            counts[try row.decode("graph_id", as: UUID.self)] = try row.decode("n", as: Int.self)
        }
        return counts
    }

    /// Changes a member's role and never leaves the graph without an admin: the graph's admin
    /// rows are locked (`FOR UPDATE`) first, so two concurrent demotions cannot both pass.
    /// Runs in a transaction of its own unless the repository is built on one.
    ///
    /// - Returns: the member, or `nil` when the user is not a member.
    /// - Throws: ``KTDBError/Code/lastAdmin`` when demoting the only admin.
    public func changeMemberRole(graphID: UUID, userID: UUID, role: GraphRole) async throws -> GraphMember? {
        try await runner.withTransaction(logger: logger) { transaction in
            let repository = GraphRepository(transaction, logger: logger)
            if role != .admin, try await repository.isLastAdmin(graphID: graphID, userID: userID) {
                throw KTProvisionError(code: .lastAdmin, message: "Cannot demote the last admin")
            }
            return try await repository.updateMemberRole(graphID: graphID, userID: userID, role: role)
        }
    }

    /// Removes a member and never the last admin (admin rows locked as in
    /// ``changeMemberRole(graphID:userID:role:)``).
    ///
    /// - Returns: whether there was such a member.
    /// - Throws: ``KTDBError/Code/lastAdmin`` when removing the only admin.
    public func removeMemberKeepingAnAdmin(graphID: UUID, userID: UUID) async throws -> Bool {
        try await runner.withTransaction(logger: logger) { transaction in
            let repository = GraphRepository(transaction, logger: logger)
            if try await repository.isLastAdmin(graphID: graphID, userID: userID) {
                throw KTProvisionError(code: .lastAdmin, message: "Cannot remove the last admin")
            }
            return try await repository.removeMember(graphID: graphID, userID: userID)
        }
    }

    /// Locks the graph's admin rows and tells whether `userID` is the only one.
    private func isLastAdmin(graphID: UUID, userID: UUID) async throws -> Bool {
        let admins = try await runner.run(
            "SELECT user_id FROM graph_members WHERE graph_id = \(graphID) AND role = 'admin' FOR UPDATE", logger: logger
        ).rows.map { row throws(KTDBError) in try row.decode(0, as: UUID.self) }
        return admins == [userID]
    }

    // MARK: Database connections

    private static let connectionColumns = "id, name, config_key, created_at"

    private func connections(_ query: PostgresQuery) async throws -> [DatabaseConnectionRecord] {
        try await runner.run(query, logger: logger).rows.map { row throws(KTDBError) in try DatabaseConnectionRecord(row: row) }
    }

    /// The connection with `id`, or `nil`.
    public func databaseConnection(id: UUID) async throws -> DatabaseConnectionRecord? {
        try await connections("SELECT \(unsafeRaw: Self.connectionColumns) FROM database_connections WHERE id = \(id)").first
    }

    /// The connection with `configKey`, or `nil`.
    public func databaseConnection(configKey: String) async throws -> DatabaseConnectionRecord? {
        try await connections("SELECT \(unsafeRaw: Self.connectionColumns) FROM database_connections WHERE config_key = \(configKey)").first
    }

    /// All connections, ordered by name.
    public func listDatabaseConnections() async throws -> [DatabaseConnectionRecord] {
        try await connections("SELECT \(unsafeRaw: Self.connectionColumns) FROM database_connections ORDER BY name")
    }

    /// Rows whose key is the reserved `default` (a startup check refuses to run while any exist).
    public func reservedKeyConnections() async throws -> [DatabaseConnectionRecord] {
        try await connections("SELECT \(unsafeRaw: Self.connectionColumns) FROM database_connections WHERE config_key = \(GraphDatabases.defaultKey)")
    }

    /// Inserts a connection row.
    ///
    /// - Throws: ``KTDBError/Code/reservedKey`` for the key `default` (``GraphDatabases/defaultKey``),
    ///   ``KTDBError/Code/invalidArgument`` for an empty name or key,
    ///   ``KTDBError/Code/conflict`` for a duplicate name or key.
    @discardableResult
    public func createDatabaseConnection(name: String, configKey: String) async throws -> DatabaseConnectionRecord {
        guard configKey != GraphDatabases.defaultKey else {
            throw KTProvisionError(code: .reservedKey, message: "config_key '\(GraphDatabases.defaultKey)' is reserved for the system database")
        }
        guard !name.isEmpty, name.unicodeScalars.count <= 200, !configKey.isEmpty, configKey.unicodeScalars.count <= 200 else {
            throw KTProvisionError(code: .invalidArgument, message: "name and config_key have 1 to 200 characters")
        }
        do {
            let row = try await runner.run(
                """
                INSERT INTO database_connections (id, name, config_key) VALUES (\(UUID()), \(name), \(configKey))
                RETURNING id, name, config_key, created_at
                """, logger: logger
            ).rows[0]
            return try DatabaseConnectionRecord(row: row)
        } catch let error as KTDBError where error.isUniqueViolation {
            throw KTProvisionError(code: .conflict, message: "a database connection with this name or config_key already exists")
        }
    }

}
