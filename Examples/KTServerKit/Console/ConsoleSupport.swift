import Foundation
import HTTPTypes
import Hummingbird
import KTDB
import KTProvision
import Logging
import Mustache
import NIOCore

/// How long a console sign-in lasts.
let consoleSessionLifetime: Duration = .seconds(8 * 3600)

/// The console's cookies: the session id, and before sign-in the login form's CSRF value
/// (double submit). Both HttpOnly and SameSite=Strict.
enum ConsoleCookie {
    static let session = "kt_session"
    static let loginCSRF = "kt_login_csrf"

    static func make(_ name: String, value: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", httpOnly: true, sameSite: .strict)
    }

    static func clear(_ name: String) -> Cookie { make(name, value: "", maxAge: 0) }
}

/// A submitted `application/x-www-form-urlencoded` form (at most 64 KiB).
struct ConsoleForm {
    var fields: [String: String]

    subscript(_ name: String) -> String? { fields[name] }

    /// The field trimmed, `nil` when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    static func read(_ request: Request, context: APIRequestContext) async throws -> ConsoleForm {
        let body = try await request.body.collect(upTo: 64 * 1024)
        return ConsoleForm(fields: parse(String(buffer: body)))
    }

    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String { String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            let name = decode(parts[0])
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }
}

/// Renders console pages: the page's template inside the layout, HTML-escaped by Mustache.
enum ConsolePage {
    static func render(
        _ template: String, title: String, values: [String: Any], session: ConsoleSession?,
        status: HTTPResponse.Status = .ok, refresh: Int? = nil, notice: String? = nil
    ) -> Response {
        let body = ConsoleTemplates.library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "body": body]
        if let refresh { layout["refresh"] = refresh }
        if let notice { layout["notice"] = notice }
        if let session {
            layout["user"] = ["email": session.auth.user.email, "superuser": session.auth.user.isSuperuser, "csrf": session.csrfToken] as [String: Any]
        }
        let html = ConsoleTemplates.library.render(layout, withTemplate: "layout") ?? ""
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// 303 See Other to `location` (the answer to every successful POST).
    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }
}

/// Reads the session cookie. Pages behind it (`required`) send a visitor without a live
/// session to `/login`; the session's user becomes the request's user, with the graph
/// restriction of the token the session was made from.
struct ConsoleSessionMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let state: ServerState
    let required: Bool

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        if let id = request.cookies[ConsoleCookie.session]?.value, !id.isEmpty,
            let session = try await ConsoleSessionRepository(state.controlPlane, logger: context.logger).session(id: id)
        {
            context.consoleSession = session
            context.auth = session.auth
            context.logger[metadataKey: "kt.user_id"] = "\(session.auth.user.id)"
        } else if required {
            return ConsolePage.redirect("/login")
        }
        return try await next(request, context)
    }
}

/// Rejects a POST whose `csrf_token` field is not the session's.
func requireCSRF(_ form: ConsoleForm, _ context: APIRequestContext) throws -> ConsoleSession {
    guard let session = context.consoleSession else { throw APIError.unauthorized }
    guard let sent = form["csrf_token"], constantTimeEqual(sent, session.csrfToken) else {
        throw APIError(.forbidden, "The form has expired or did not come from this site. Reload the page and try again.")
    }
    return session
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
}

/// Turns errors of console routes into HTML pages (a 401 into a redirect to `/login`).
struct ConsoleErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = APIError.from(error, logger: context.logger)
            if apiError.status == .unauthorized { return ConsolePage.redirect("/login") }
            let heading =
                switch apiError.status {
                case .notFound: "Not found"
                case .forbidden: "Not allowed"
                case .serviceUnavailable: "Unavailable"
                default: "Something went wrong"
                }
            return ConsolePage.render(
                "error", title: heading, values: ["heading": heading, "detail": apiError.detail],
                session: context.consoleSession, status: apiError.status)
        }
    }
}

extension Date {
    /// `2026-11-26 12:00 UTC`.
    var consoleText: String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: self)
    }
}
