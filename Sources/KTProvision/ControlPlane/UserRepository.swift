import Crypto
public import Foundation
public import KTCore
public import KTDB
public import Logging

/// A row of the `user` table (no password hash: API tokens authenticate).
public struct User: Sendable, Hashable {
    /// Primary key.
    public var id: UUID
    /// Unique e-mail address (stored lower-cased).
    public var email: String
    /// Optional display name.
    public var displayName: String?
    /// Whether the user may sign in.
    public var isActive: Bool
    /// Whether the user administers the whole system.
    public var isSuperuser: Bool
    /// Creation time.
    public var createdAt: Date

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        email = try row.decode("email", as: String.self)
        displayName = try row.decode("display_name", as: String?.self)
        isActive = try row.decode("is_active", as: Bool.self)
        isSuperuser = try row.decode("is_superuser", as: Bool.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }
}

/// A user authenticated by an API token, with the token's graph restriction.
public struct AuthenticatedUser: Sendable, Hashable {
    /// The user.
    public var user: User
    /// The id of the token used.
    public var tokenID: UUID
    /// Slugs the token is limited to; `nil` means every graph the user may reach.
    public var graphSlugs: [String]?

    /// Whether the token allows reaching the graph `slug`.
    public func tokenAllows(slug: String) -> Bool {
        graphSlugs.map { $0.contains(slug) } ?? true
    }
}

/// A newly issued API token. ``token`` is the only copy of the plaintext: only its SHA-256
/// digest is stored.
public struct IssuedAPIToken: Sendable {
    /// The token row's id.
    public var id: UUID
    /// The owner.
    public var userID: UUID
    /// The plaintext token to hand to the user once (`kt_` followed by 43 URL-safe characters).
    public var token: Secret
}

/// Users and their API tokens, in the `public` schema of the system graph-db.
///
/// Tokens are 256-bit random values; the table keeps only their SHA-256 digest, so a copy of the
/// database does not reveal a usable token. ``authenticate(token:)`` hashes what a client sends
/// and looks the digest up.
public struct UserRepository: Sendable {
    private let runner: any PostgresQueryRunner
    private let logger: Logger

    /// Creates a repository on `runner`.
    public init(_ runner: any PostgresQueryRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    private static let userColumns = "id, email, display_name, is_active, is_superuser, created_at"

    /// Creates a user.
    ///
    /// - Throws: ``KTDBError/Code/invalidArgument`` for an address without `@` or longer than
    ///   320 characters, ``KTDBError/Code/conflict`` when the address is taken.
    @discardableResult
    public func createUser(email: String, isSuperuser: Bool = false, displayName: String? = nil) async throws -> User {
        let normalized = email.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = normalized.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, normalized.unicodeScalars.count <= 320,
            !normalized.contains(where: \.isWhitespace)
        else {
            throw KTProvisionError(code: .invalidArgument, message: "'\(email)' is not an e-mail address")
        }
        do {
            let row = try await runner.run(
                """
                INSERT INTO "user" (id, email, is_superuser, display_name) VALUES (\(UUID()), \(normalized), \(isSuperuser), \(displayName))
                RETURNING \(unsafeRaw: Self.userColumns)
                """, logger: logger
            ).rows[0]
            return try User(row: row)
        } catch let error as KTDBError where error.isUniqueViolation {
            throw KTProvisionError(code: .conflict, message: "a user with this e-mail address already exists")
        }
    }

    /// The user with `id`, or `nil`.
    public func user(id: UUID) async throws -> User? {
        try await runner.run("SELECT \(unsafeRaw: Self.userColumns) FROM \"user\" WHERE id = \(id)", logger: logger)
            .first.map { row throws(KTDBError) in try User(row: row) }
    }

    /// The user with `email` (case-insensitive), or `nil`.
    public func user(email: String) async throws -> User? {
        try await runner.run("SELECT \(unsafeRaw: Self.userColumns) FROM \"user\" WHERE email = \(email.lowercased())", logger: logger)
            .first.map { row throws(KTDBError) in try User(row: row) }
    }

    /// Issues a new API token for `userID`, optionally limited to some graphs.
    ///
    /// - Throws: ``KTDBError/Code/notFound`` when the user does not exist.
    public func issueToken(userID: UUID, name: String = "default", graphSlugs: [String]? = nil) async throws -> IssuedAPIToken {
        let token = "kt_" + SecureToken.make()
        let id = UUID()
        do {
            try await runner.run(
                """
                INSERT INTO api_tokens (id, user_id, name, token_hash, graph_slugs)
                VALUES (\(id), \(userID), \(name), \(Self.digest(token)), \(graphSlugs))
                """, logger: logger)
        } catch let error as KTDBError where error.hasSQLState("23503") {
            throw KTProvisionError(code: .notFound, message: "no user with id \(userID)")
        }
        return IssuedAPIToken(id: id, userID: userID, token: Secret(token))
    }

    /// The active user a token belongs to, or `nil` for an unknown, expired or inactive one.
    /// Records the token's last use (a write per call: servers use ``verify(token:)`` and
    /// ``recordTokenUse(_:at:)`` instead).
    public func authenticate(token: String) async throws -> AuthenticatedUser? {
        guard let auth = try await verify(token: token) else { return nil }
        try await recordTokenUse([auth.tokenID], at: Date())
        return auth
    }

    /// The active user a token belongs to, or `nil` for an unknown, expired or inactive one.
    /// Reads only.
    public func verify(token: String) async throws -> AuthenticatedUser? {
        guard token.hasPrefix("kt_"), token.count < 200 else { return nil }
        let rows = try await runner.run(
            """
            SELECT u.id, u.email, u.display_name, u.is_active, u.is_superuser, u.created_at, t.id AS token_id, t.graph_slugs
            FROM api_tokens t JOIN "user" u ON u.id = t.user_id
            WHERE t.token_hash = \(Self.digest(token)) AND u.is_active AND (t.expires_at IS NULL OR t.expires_at > now())
            """, logger: logger)
        guard let row = rows.first else { return nil }
        return AuthenticatedUser(
            user: try User(row: row),
            tokenID: try row.decode("token_id", as: UUID.self),
            graphSlugs: try row.decode("graph_slugs", as: [String]?.self)
        )
    }

    /// Records that the tokens were used at `date`, in one statement; a token whose last use
    /// is recorded less than a minute before `date` is left as it is.
    public func recordTokenUse(_ tokenIDs: [UUID], at date: Date) async throws {
        guard !tokenIDs.isEmpty else { return }
        try await runner.run(
            """
            UPDATE api_tokens SET last_used_at = \(date)
            WHERE id = ANY(\(tokenIDs.map(\.uuidString))::uuid[])
              AND (last_used_at IS NULL OR last_used_at < \(date)::timestamptz - interval '1 minute')
            """, logger: logger)
    }

    /// The hex SHA-256 digest of a token, as stored (a key for caches that must not hold tokens).
    public static func tokenDigest(_ token: String) -> String { digest(token) }

    /// The hex SHA-256 digest stored for a token.
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
