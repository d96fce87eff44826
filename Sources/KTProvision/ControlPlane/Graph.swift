public import Foundation
import KTDB

/// A graph's lifecycle status, as an open set of values.
public struct GraphStatus: Sendable, Hashable, CustomStringConvertible {
    /// The stored value.
    public let rawValue: String
    /// Creates a status from its stored value.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The row exists; schemas and collections are being created.
    public static let provisioning = GraphStatus(rawValue: "provisioning")
    /// Usable.
    public static let active = GraphStatus(rawValue: "active")
    /// Provisioning failed (retry converges).
    public static let error = GraphStatus(rawValue: "error")
    /// Soft-deleted.
    public static let deleted = GraphStatus(rawValue: "deleted")
    /// Being moved to another database pair; it serves from its source until the switch.
    public static let moving = GraphStatus(rawValue: "moving")

    /// Whether the graph's data can be read and written (active, or moving and not yet paused).
    public var isServing: Bool { self == .active || self == .moving }
    /// The stored value.
    public var description: String { rawValue }
}

/// A member's role in a graph, as an open set of values.
public struct GraphRole: Sendable, Hashable, CustomStringConvertible {
    /// The stored value.
    public let rawValue: String
    /// Creates a role from its stored value.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// Reads the graph.
    public static let reader = GraphRole(rawValue: "reader")
    /// Writes the graph.
    public static let writer = GraphRole(rawValue: "writer")
    /// Administers the graph.
    public static let admin = GraphRole(rawValue: "admin")
    /// The stored value.
    public var description: String { rawValue }
}

/// A row of the `graphs` table.
public struct Graph: Sendable, Hashable {
    /// Primary key.
    public var id: UUID
    /// Unique slug.
    public var slug: String
    /// Display name.
    public var name: String
    /// Optional description.
    public var description: String?
    /// Whether this is the default graph (schema `public`).
    public var isDefault: Bool
    /// Whether the graph contributes to the public graph.
    public var contributeToPublic: Bool
    /// Whether the graph uses the public cache.
    public var usePublicCache: Bool
    /// Graph type (`v1`).
    public var graphType: String
    /// Bring-your-own-key enabled.
    public var byokEnabled: Bool
    /// Legacy storage mode (always `schema` for new graphs).
    public var storageMode: String
    /// The graph's schema in its graph-db and write-db.
    public var schemaName: String
    /// The external database pair, or `nil` for the system databases.
    public var databaseConnectionID: UUID?
    /// Lifecycle status.
    public var status: GraphStatus
    /// The creating user.
    public var createdBy: UUID?
    /// Creation time.
    public var createdAt: Date
    /// Last update time.
    public var updatedAt: Date
    /// Why the graph's schemas are not at the head migration: the failure of the last
    /// migrate-all that tried them, or `nil` when they were migrated.
    public var schemaError: String?
    /// The provisioning steps finished so far (by name, in order), for the current attempt.
    public var provisioningSteps: [String]
    /// Why the last provisioning attempt failed (the step and the error), or `nil`.
    public var provisioningError: String?
    /// While moving: the target pair's connection key (`default` for the system pair).
    public var moveTarget: String?
    /// While moving: the phase (`copying`, `paused`, `switched`, …).
    public var movePhase: String?
    /// After a move's switch, until the source is dropped: the pair the graph left (`default`
    /// for the system pair), whose schemas and collections of this graph are left to drop.
    public var moveSource: String?

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        slug = try row.decode("slug", as: String.self)
        name = try row.decode("name", as: String.self)
        description = try row.decode("description", as: String?.self)
        isDefault = try row.decode("is_default", as: Bool.self)
        contributeToPublic = try row.decode("contribute_to_public", as: Bool.self)
        usePublicCache = try row.decode("use_public_cache", as: Bool.self)
        graphType = try row.decode("graph_type", as: String.self)
        byokEnabled = try row.decode("byok_enabled", as: Bool.self)
        storageMode = try row.decode("storage_mode", as: String.self)
        schemaName = try row.decode("schema_name", as: String.self)
        databaseConnectionID = try row.decode("database_connection_id", as: UUID?.self)
        status = GraphStatus(rawValue: try row.decode("status", as: String.self))
        createdBy = try row.decode("created_by", as: UUID?.self)
        createdAt = try row.decode("created_at", as: Date.self)
        updatedAt = try row.decode("updated_at", as: Date.self)
        schemaError = try row.decode("schema_error", as: String?.self)
        provisioningSteps = try row.decode("provisioning_steps", as: [String].self)
        provisioningError = try row.decode("provisioning_error", as: String?.self)
        moveTarget = try row.decode("move_target", as: String?.self)
        movePhase = try row.decode("move_phase", as: String?.self)
        moveSource = try row.decode("move_source", as: String?.self)
    }
}

/// A row of the `database_connections` table: a name and a key into `Settings.graphDatabases`.
/// Connection strings are never stored.
public struct DatabaseConnectionRecord: Sendable, Hashable {
    /// Primary key.
    public var id: UUID
    /// Unique display name.
    public var name: String
    /// Unique key into `Settings.graphDatabases`; never `default`.
    public var configKey: String
    /// Creation time.
    public var createdAt: Date

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        name = try row.decode("name", as: String.self)
        configKey = try row.decode("config_key", as: String.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

/// A row of the `graph_members` table.
public struct GraphMember: Sendable, Hashable {
    /// Primary key.
    public var id: UUID
    /// The graph.
    public var graphID: UUID
    /// The user.
    public var userID: UUID
    /// The role.
    public var role: GraphRole
    /// Creation time.
    public var createdAt: Date

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        graphID = try row.decode("graph_id", as: UUID.self)
        userID = try row.decode("user_id", as: UUID.self)
        role = GraphRole(rawValue: try row.decode("role", as: String.self))
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

/// A member with the user's e-mail address and display name.
public struct GraphMemberDetail: Sendable, Hashable {
    /// The membership.
    public var member: GraphMember
    /// The user's e-mail address.
    public var email: String
    /// The user's display name.
    public var displayName: String?
}
