import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTCore
import KTDB
import KTGraph
import KTProvision
import Logging
import NIOCore

/// The web console: server-rendered pages over the same SDK calls as the JSON API, signed in
/// with an API token (the session cookie never holds it). Every page works without
/// JavaScript: forms POST, then redirect.
struct ConsoleRoutes {
    let state: ServerState

    func register(on router: Router<APIRequestContext>) {
        router.get("console.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet)))
        }
        let open = router.group().add(middleware: ConsoleErrorMiddleware()).add(middleware: ConsoleSessionMiddleware(state: state, required: false))
        open.get("/") { _, context in ConsolePage.redirect(context.consoleSession == nil ? "/login" : "/graphs") }
        open.get("login", use: loginPage)
        open.post("login", use: login)
        open.post("logout", use: logout)
        let pages = router.group().add(middleware: ConsoleErrorMiddleware()).add(middleware: ConsoleSessionMiddleware(state: state, required: true))
        pages.get("graphs", use: graphs)
        pages.get("graphs/new", use: newGraphPage)
        pages.post("graphs/new", use: createGraph)
        pages.get("graphs/{slug}", use: graph)
        pages.post("graphs/{slug}/retry", use: retry)
        pages.post("graphs/{slug}/delete", use: delete)
        pages.post("graphs/{slug}/members", use: addMember)
        pages.post("graphs/{slug}/members/{user_id}/role", use: changeRole)
        pages.post("graphs/{slug}/members/{user_id}/remove", use: removeMember)
        pages.get("graphs/{slug}/nodes", use: nodes)
        pages.get("graphs/{slug}/nodes/{node_id}", use: node)
        pages.get("database-connections", use: connections)
        pages.post("database-connections", use: createConnection)
    }

    // MARK: Sign-in

    @Sendable func loginPage(_ request: Request, context: APIRequestContext) async throws -> Response {
        if context.consoleSession != nil { return ConsolePage.redirect("/graphs") }
        return loginForm(error: nil, status: .ok)
    }

    /// The form with a fresh double-submit CSRF value (cookie and hidden field).
    func loginForm(error: String?, status: HTTPResponse.Status) -> Response {
        let csrf = SecureToken.make()
        var values: [String: Any] = ["csrf": csrf]
        if let error { values["error"] = error }
        var response = ConsolePage.render("login", title: "Sign in", values: values, session: nil, status: status)
        response.setCookie(ConsoleCookie.make(ConsoleCookie.loginCSRF, value: csrf, maxAge: 3600))
        return response
    }

    @Sendable func login(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        guard let sent = form["csrf_token"], let expected = request.cookies[ConsoleCookie.loginCSRF]?.value, !expected.isEmpty,
            constantTimeEqual(sent, expected)
        else {
            return loginForm(error: "The form has expired. Please sign in again.", status: .forbidden)
        }
        guard let token = form.text("token"),
            let auth = try await state.authenticator.authenticate(token: token, logger: context.logger)
        else {
            return loginForm(error: "That API token is not valid.", status: .unauthorized)
        }
        let issued = try await ConsoleSessionRepository(state.controlPlane, logger: context.logger).create(for: auth, lifetime: consoleSessionLifetime)
        var response = ConsolePage.redirect("/graphs")
        response.setCookie(ConsoleCookie.make(ConsoleCookie.session, value: issued.id.revealedValue, maxAge: Int(consoleSessionLifetime.components.seconds)))
        response.setCookie(ConsoleCookie.clear(ConsoleCookie.loginCSRF))
        return response
    }

    @Sendable func logout(_ request: Request, context: APIRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request, context: context)
        if context.consoleSession != nil {
            _ = try requireCSRF(form, context)
            if let id = request.cookies[ConsoleCookie.session]?.value {
                try await ConsoleSessionRepository(state.controlPlane, logger: context.logger).delete(id: id)
            }
        }
        var response = ConsolePage.redirect("/login")
        response.setCookie(ConsoleCookie.clear(ConsoleCookie.session))
        return response
    }

    // MARK: Helpers

    func session(_ context: APIRequestContext) throws -> ConsoleSession {
        guard let session = context.consoleSession else { throw APIError.unauthorized }
        return session
    }

    /// The confirmation for `?done=` after a redirect (a fixed text per code, never the query's text).
    func notice(_ request: Request) -> String? {
        switch request.uri.queryParameters.get("done") {
        case "retried": "Provisioning succeeded: the graph is active."
        case "deleted": "The graph was deleted."
        case "deleted-permanently": "The graph was deleted permanently; its slug is free."
        case "member-added": "The member was added."
        case "member-removed": "The member was removed."
        case "role-changed": "The role was changed."
        case "database-added": "The database was added."
        default: nil
        }
    }
}

/// Faults the browser tests inject into a running server (only when
/// `KT_CONSOLE_TEST_FAULTS` names them, never in normal operation).
enum ConsoleFaults {
    /// `connections`: the database list of the creation form fails to load.
    static func connectionsList() async throws {
        if ProcessInfo.processInfo.environment["KT_CONSOLE_TEST_FAULTS"]?.split(separator: ",").contains("connections") == true {
            throw APIError(.serviceUnavailable, "injected fault")
        }
    }
}
