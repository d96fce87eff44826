import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTProvision
import Logging

/// The request context of the example server: Hummingbird's core storage plus the user a bearer
/// token authenticated.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var auth: AuthenticatedUser?
    /// The web console session the request came with (console pages only).
    var consoleSession: ConsoleSession?

    init(source: Source) {
        coreContext = .init(source: source)
        auth = nil
        consoleSession = nil
    }

    /// The authenticated user; a route behind ``AuthMiddleware`` always has one.
    func requireAuth() throws -> AuthenticatedUser {
        guard let auth else { throw APIError.unauthorized }
        return auth
    }
}

/// Authenticates `Authorization: Bearer <token>` against the stored token digests (through the
/// server's ``TokenAuthenticator``); no token or an unknown one is a 401, too many unknown ones at
/// once a 429.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let state: ServerState

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw APIError.unauthorized }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw APIError.unauthorized }
        guard let user = try await state.authenticator.authenticate(token: String(parts[1]).trimmingCharacters(in: .whitespaces), logger: context.logger) else {
            throw APIError.unauthorized
        }
        var context = context
        context.auth = user
        context.logger[metadataKey: "kt.user_id"] = "\(user.user.id)"
        return try await next(request, context)
    }
}
