public import Foundation
public import KTCore
public import KTDB
public import Logging

/// A signed-in web console session: the user and token it was made from, and the CSRF token
/// its forms carry.
public struct ConsoleSession: Sendable, Hashable {
    /// The user, with the graph restriction of the API token the session was made from.
    public var auth: AuthenticatedUser
    /// The value every form of the session carries (checked on POST).
    public var csrfToken: String
    /// When the session ends.
    public var expiresAt: Date
}

/// A session just created: ``id`` is the only copy of the cookie value (the table keeps its
/// SHA-256 digest).
public struct IssuedConsoleSession: Sendable {
    /// The cookie value.
    public var id: Secret
    /// The session.
    public var session: ConsoleSession
}

/// Web console sessions, in the `public` schema of the system graph-db (`console_sessions`).
///
/// A session is made from a verified API token and ends when it expires, when the user signs
/// out, when the token is deleted or expires, or when the user is deactivated. Every process
/// of a deployment sees the same sessions.
public struct ConsoleSessionRepository: Sendable {
    private let runner: any PostgresQueryRunner
    private let logger: Logger

    /// Creates a repository on `runner`.
    public init(_ runner: any PostgresQueryRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    /// Creates a session for `auth` lasting `lifetime`, and removes expired ones.
    public func create(for auth: AuthenticatedUser, lifetime: Duration) async throws -> IssuedConsoleSession {
        let id = SecureToken.make(), csrf = SecureToken.make()
        let row = try await runner.run(
            """
            WITH pruned AS (DELETE FROM console_sessions WHERE expires_at < now())
            INSERT INTO console_sessions (id_hash, token_id, csrf_token, expires_at)
            VALUES (\(UserRepository.digest(id)), \(auth.tokenID), \(csrf), now() + make_interval(secs => \(lifetime.timeInterval)))
            RETURNING expires_at
            """, logger: logger
        ).rows[0]
        return IssuedConsoleSession(id: Secret(id), session: ConsoleSession(auth: auth, csrfToken: csrf, expiresAt: try row.decode(0, as: Date.self)))
    }

    /// The live session whose cookie value is `id`, or `nil` (unknown, expired, its token gone
    /// or expired, its user inactive).
    public func session(id: String) async throws -> ConsoleSession? {
        guard id.count == 43, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        let rows = try await runner.run(
            """
            SELECT u.id, u.email, u.display_name, u.is_active, u.is_superuser, u.created_at,
                   t.id AS token_id, t.graph_slugs, s.csrf_token, s.expires_at
            FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id JOIN "user" u ON u.id = t.user_id
            WHERE s.id_hash = \(UserRepository.digest(id)) AND s.expires_at > now() AND u.is_active
              AND (t.expires_at IS NULL OR t.expires_at > now())
            """, logger: logger)
        guard let row = rows.first else { return nil }
        let auth = AuthenticatedUser(
            user: try User(row: row), tokenID: try row.decode("token_id", as: UUID.self),
            graphSlugs: try row.decode("graph_slugs", as: [String]?.self))
        return ConsoleSession(auth: auth, csrfToken: try row.decode("csrf_token", as: String.self), expiresAt: try row.decode("expires_at", as: Date.self))
    }

    /// Ends the session whose cookie value is `id` (nothing happens for an unknown one).
    public func delete(id: String) async throws {
        try await runner.run("DELETE FROM console_sessions WHERE id_hash = \(UserRepository.digest(id))", logger: logger)
    }
}
