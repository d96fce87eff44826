import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// `GraphResponse`: the original's fields. Never a database URL or password. Written with
/// ``JSONWriter``: the graph list may hold thousands.
struct GraphResponse: JSONWritable {
    var graph: Graph
    var databaseConnectionName: String?
    var memberCount: Int
    var nodeCount: Int

    func write(to json: inout JSONWriter) {
        json.object { json in
            json.key("byok_enabled"); json.bool(graph.byokEnabled)
            json.key("contribute_to_public"); json.bool(graph.contributeToPublic)
            json.key("created_at"); json.date(graph.createdAt)
            json.key("created_by"); json.uuid(graph.createdBy)
            json.key("database_connection_id"); json.uuid(graph.databaseConnectionID)
            json.key("database_connection_name"); json.string(databaseConnectionName)
            json.key("description"); json.string(graph.description)
            json.key("graph_type"); json.string(graph.graphType)
            json.key("id"); json.uuid(graph.id)
            json.key("is_default"); json.bool(graph.isDefault)
            json.key("member_count"); json.int(memberCount)
            json.key("move")
            if graph.status == .moving, let target = graph.moveTarget {
                json.object { json in
                    json.key("phase"); json.string(graph.movePhase)
                    json.key("steps"); json.array { json in for step in graph.provisioningSteps { json.string(step) } }
                    json.key("target"); json.string(target)
                }
            } else {
                json.null()
            }
            json.key("name"); json.string(graph.name)
            json.key("node_count"); json.int(nodeCount)
            json.key("schema_name"); json.string(graph.schemaName)
            json.key("slug"); json.string(graph.slug)
            json.key("status"); json.string(graph.status.rawValue)
            json.key("storage_mode"); json.string(graph.storageMode)
            json.key("updated_at"); json.date(graph.updatedAt)
            json.key("use_public_cache"); json.bool(graph.usePublicCache)
        }
    }
}

/// `GraphStatus`: a graph's database, schema versions against head, sync lag and dead letters.
struct GraphStatusResponse: JSONWritable {
    var report: GraphStatusReport

    func write(to json: inout JSONWriter) {
        func schema(_ version: SchemaVersion?, _ json: inout JSONWriter) {
            guard let version else { return json.null() }
            json.object { json in
                json.key("at_head"); json.bool(version.atHead)
                json.key("head"); json.int(version.head)
                json.key("set"); json.string(version.set)
                json.key("version"); json.int(version.applied)
            }
        }
        json.object { json in
            json.key("database"); json.string(report.database)
            json.key("graph_schema"); schema(report.graphSchema, &json)
            json.key("problems"); json.array { json in for problem in report.problems { json.string(problem) } }
            json.key("schema_error"); json.string(report.graph.schemaError)
            json.key("slug"); json.string(report.graph.slug)
            json.key("status"); json.string(report.graph.status.rawValue)
            json.key("sync")
            if let sync = report.sync {
                json.object { json in
                    json.key("dead_letters"); json.int(sync.deadLetters)
                    json.key("lag_seconds"); json.double(sync.lag())
                    json.key("oldest_unsynced_change")
                    if let date = sync.oldestUnsyncedChange { json.date(date) } else { json.null() }
                    json.key("pending"); json.int(sync.pending)
                }
            } else {
                json.null()
            }
            json.key("write_schema"); schema(report.writeSchema, &json)
        }
    }
}

/// `DatabaseConnectionResponse`: `id` and `created_at` are `null` for the synthetic `default` entry.
struct DatabaseConnectionResponse: Encodable {
    var id: UUID?
    var name: String
    var configKey: String
    var createdAt: Date?

    init(_ record: DatabaseConnectionRecord) {
        id = record.id
        name = record.name
        configKey = record.configKey
        createdAt = record.createdAt
    }

    init(id: UUID?, name: String, configKey: String, createdAt: Date?) {
        self.id = id
        self.name = name
        self.configKey = configKey
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey { case id, name, configKey = "config_key", createdAt = "created_at" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id?.json, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(configKey, forKey: .configKey)
        try c.encode(createdAt, forKey: .createdAt)
    }
}

/// `GraphMemberResponse`.
struct GraphMemberResponse: Encodable {
    var detail: GraphMemberDetail

    enum CodingKeys: String, CodingKey { case id, userID = "user_id", email, displayName = "display_name", role, createdAt = "created_at" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(detail.member.id.json, forKey: .id)
        try c.encode(detail.member.userID.json, forKey: .userID)
        try c.encode(detail.email, forKey: .email)
        try c.encode(detail.displayName, forKey: .displayName)
        try c.encode(detail.member.role.rawValue, forKey: .role)
        try c.encode(detail.member.createdAt, forKey: .createdAt)
    }
}

/// `CreateGraphRequest`.
struct CreateGraphRequest: Decodable {
    var slug: String
    var name: String
    var description: String?
    var graphType: String?
    var byokEnabled: Bool?
    var databaseConnectionConfigKey: String?
    var contributeToPublic: Bool?
    var usePublicCache: Bool?

    enum CodingKeys: String, CodingKey {
        case slug, name, description, graphType = "graph_type", byokEnabled = "byok_enabled"
        case databaseConnectionConfigKey = "database_connection_config_key"
        case contributeToPublic = "contribute_to_public", usePublicCache = "use_public_cache"
    }

    init(
        slug: String, name: String, description: String? = nil, graphType: String? = nil, byokEnabled: Bool? = nil,
        databaseConnectionConfigKey: String? = nil, contributeToPublic: Bool? = nil, usePublicCache: Bool? = nil
    ) {
        self.slug = slug
        self.name = name
        self.description = description
        self.graphType = graphType
        self.byokEnabled = byokEnabled
        self.databaseConnectionConfigKey = databaseConnectionConfigKey
        self.contributeToPublic = contributeToPublic
        self.usePublicCache = usePublicCache
    }

    /// As the document says: `description` and `database_connection_config_key` may be null;
    /// the other optional fields may be left out but not sent as null (null is not "the default").
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        for key in [CodingKeys.graphType, .byokEnabled, .contributeToPublic, .usePublicCache] where container.contains(key) {
            if try container.decodeNil(forKey: key) {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: [key], debugDescription: "\(key.rawValue) may not be null"))
            }
        }
        slug = try container.decode(String.self, forKey: .slug)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        graphType = try container.decodeIfPresent(String.self, forKey: .graphType)
        byokEnabled = try container.decodeIfPresent(Bool.self, forKey: .byokEnabled)
        databaseConnectionConfigKey = try container.decodeIfPresent(String.self, forKey: .databaseConnectionConfigKey)
        contributeToPublic = try container.decodeIfPresent(Bool.self, forKey: .contributeToPublic)
        usePublicCache = try container.decodeIfPresent(Bool.self, forKey: .usePublicCache)
    }

    /// Field validation the original did in pydantic (422). `default` passes here; the route
    /// answers it with 400 like the original.
    func validate() throws {
        guard slug == "default" || (try? GraphSlug(slug)) != nil else {
            throw APIError(.unprocessableContent, "slug must match ^[a-z0-9][a-z0-9_]{1,55}[a-z0-9]$")
        }
        try FieldLimit.name.check(name)
        if let description { try FieldLimit.description.check(description) }
        if let graphType {
            try FieldLimit.graphType.check(graphType)
            guard graphType.count >= 2, graphType.first == "v", graphType.dropFirst().allSatisfy(\.isASCIIDigit) else {
                throw APIError(.unprocessableContent, "graph_type must match ^v[0-9]+$")
            }
        }
        if let databaseConnectionConfigKey { try FieldLimit.configKey.check(databaseConnectionConfigKey, field: "database_connection_config_key") }
    }
}

/// `UpdateGraphRequest`: absent fields stay unchanged.
struct UpdateGraphRequest: Decodable {
    var name: String?
    var description: String?
    var contributeToPublic: Bool?
    var usePublicCache: Bool?

    func validate() throws {
        if let name { try FieldLimit.name.check(name) }
        if let description { try FieldLimit.description.check(description) }
    }

    enum CodingKeys: String, CodingKey {
        case name, description, contributeToPublic = "contribute_to_public", usePublicCache = "use_public_cache"
    }
}

/// `MoveGraphRequest` (new: the original could not move a graph).
struct MoveGraphRequest: Decodable {
    var databaseConnectionConfigKey: String

    func validate() throws {
        try FieldLimit.configKey.check(databaseConnectionConfigKey, field: "database_connection_config_key")
    }

    enum CodingKeys: String, CodingKey {
        case databaseConnectionConfigKey = "database_connection_config_key"
    }
}

/// `CreateDatabaseConnectionRequest` (new: the original had no API for this).
struct CreateDatabaseConnectionRequest: Decodable {
    var name: String
    var configKey: String

    func validate() throws {
        try FieldLimit.name.check(name)
        try FieldLimit.configKey.check(configKey, field: "config_key")
    }

    enum CodingKeys: String, CodingKey { case name, configKey = "config_key" }
}

/// `AddMemberRequest`.
struct AddMemberRequest: Decodable {
    var userID: String
    var role: String?

    enum CodingKeys: String, CodingKey { case userID = "user_id", role }
}

/// `UpdateMemberRoleRequest`.
struct UpdateMemberRoleRequest: Decodable {
    var role: String
}

/// The length limits of request strings, in Unicode code points (what PostgreSQL's
/// `varchar(n)` counts), with the columns they are stored in; the OpenAPI document states the
/// same `minLength`/`maxLength`.
struct FieldLimit {
    var field: String
    var range: ClosedRange<Int>

    static let name = FieldLimit(field: "name", range: 1...200)  // graphs.name, database_connections.name
    static let description = FieldLimit(field: "description", range: 0...10_000)
    static let graphType = FieldLimit(field: "graph_type", range: 1...20)  // graphs.graph_type
    static let configKey = FieldLimit(field: "config_key", range: 1...200)  // database_connections.config_key

    /// 422 unless `value` has a length in `range` (code points; blank names count as empty)
    /// and holds no NUL (PostgreSQL text cannot).
    func check(_ value: String, field: String? = nil) throws {
        guard !value.utf8.contains(0) else { throw APIError(.unprocessableContent, "\(field ?? self.field) may not contain NUL") }
        let length = range.lowerBound > 0 && value.trimmingCharacters(in: .whitespaces).isEmpty ? 0 : value.unicodeScalars.count
        guard range.contains(length) else {
            throw APIError(.unprocessableContent, "\(field ?? self.field) has \(range.lowerBound) to \(range.upperBound) characters (Unicode code points)")
        }
    }
}

extension UUID {
    /// Lower-case text, as the original API wrote UUIDs.
    var json: String { uuidString.lowercased() }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Parses a role name; anything else is a 422.
func parseRole(_ text: String?) throws -> GraphRole {
    switch text ?? "reader" {
    case "reader": return .reader
    case "writer": return .writer
    case "admin": return .admin
    default: throw APIError(.unprocessableContent, "role must be one of reader, writer, admin")
    }
}
