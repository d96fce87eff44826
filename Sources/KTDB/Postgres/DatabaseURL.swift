import Foundation
public import KTCore

/// A PostgreSQL connection URL, parsed and normalised for libpq.
///
/// Accepted schemes are `postgresql://`, `postgres://` and the SQLAlchemy driver styles
/// `postgresql+asyncpg://`, `postgresql+psycopg://` and `postgresql+psycopg2://`; all mean the same
/// server. User names and passwords are percent-decoded once, so `%2B`, `%25` and `%40` reach
/// the server as `+`, `%` and `@`. Query parameters are checked against the libpq keywords
/// this SDK passes through; asyncpg's `ssl=` becomes `sslmode=`. Anything else is an error
/// that names the parameter, so libpq never sees a key it would reject.
///
/// ``description`` never shows the password.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Host name, IP address or Unix socket folder. Empty means libpq's default.
    public var host: String
    /// TCP port; `nil` means libpq's default (5432).
    public var port: Int?
    /// Login role, decoded.
    public var user: String?
    /// Password, decoded.
    public var password: Secret?
    /// Database name, decoded.
    public var database: String?
    /// libpq connection keywords other than host, port, user, password and dbname (for example `sslmode`).
    public var parameters: [String: String]

    /// The libpq keywords a URL may carry in its query string.
    public static let supportedParameters: Set<String> = [
        "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcompression", "sslsni",
        "connect_timeout", "application_name", "fallback_application_name", "options",
        "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "target_session_attrs", "gssencmode", "channel_binding", "client_encoding", "host", "hostaddr",
    ]

    private static let acceptedSchemes: Set<String> = [
        "postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2",
    ]

    /// Creates a URL from its parts.
    public init(
        host: String,
        port: Int? = nil,
        user: String? = nil,
        password: Secret? = nil,
        database: String? = nil,
        parameters: [String: String] = [:]
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.parameters = parameters
    }

    /// Parses and normalises a URL.
    ///
    /// - Parameter key: the setting the URL came from, named in the error's message.
    /// - Throws: ``KTDBError`` with code ``KTDBError/Code/invalidDatabaseURL``; its message
    ///   names the scheme or parameter at fault and never contains the password.
    public init(parsing text: String, key: String? = nil) throws(KTDBError) {
        func fail(_ detail: String) -> KTDBError {
            KTDBError(code: .invalidDatabaseURL, message: key.map { "\($0): \(detail)" } ?? detail)
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw fail("not a URL: expected postgresql://user:password@host:port/database")
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        guard Self.acceptedSchemes.contains(scheme) else {
            throw fail("unsupported scheme '\(scheme)'; use postgresql://")
        }
        var rest = Substring(trimmed[schemeEnd.upperBound...])
        // The user information ends at the last '@': a password may hold raw '?', '#', '/' or
        // ':' (they should be percent-encoded, but are tolerated), and no part of it is ever
        // quoted in an error.
        var userInfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        if rest.contains("#") {
            throw fail("unexpected '#' after the host; special characters in the user name or password must be percent-encoded (for example %23 for #)")
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        let hostPort = rest

        var user: String?
        var password: Secret?
        if let userInfo {
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let decodedUser = String(parts[0]).removingPercentEncoding else {
                throw fail("the user name has an invalid percent-encoding; special characters must be percent-encoded (for example %25 for %)")
            }
            user = decodedUser.isEmpty ? nil : decodedUser
            if parts.count == 2 {
                guard let decoded = String(parts[1]).removingPercentEncoding else {
                    throw fail("the password has an invalid percent-encoding; special characters must be percent-encoded (for example %25 for %)")
                }
                password = Secret(decoded)
            }
        }

        var host = String(hostPort)
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw fail("unterminated IPv6 address") }
            let after = host[host.index(after: close)...]
            let address = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                port = try Self.parsePort(after.dropFirst(), fail: fail)
            } else if !after.isEmpty {
                throw fail("unexpected text after the IPv6 address")
            }
            host = address
        } else if let colon = host.lastIndex(of: ":") {
            port = try Self.parsePort(host[host.index(after: colon)...], fail: fail)
            host = String(host[..<colon])
        }
        guard let decodedHost = host.removingPercentEncoding else { throw fail("the host has an invalid percent-encoding") }

        var database: String?
        if !path.isEmpty {
            guard let decoded = String(path).removingPercentEncoding else {
                throw fail("the database name has an invalid percent-encoding")
            }
            database = decoded
        }

        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = String(kv[0]).removingPercentEncoding,
                let value = (kv.count == 2 ? String(kv[1]) : "").removingPercentEncoding
            else { throw fail("a query parameter has an invalid percent-encoding") }
            switch name {
            case "ssl", "sslmode":
                guard let mode = SSLMode(value) else {
                    throw fail("query parameter '\(name)' has unsupported value '\(value)'; use one of \(SSLMode.all.map(\.rawValue).joined(separator: ", "))")
                }
                parameters["sslmode"] = mode.rawValue
            case "password", "user", "dbname", "port":
                throw fail("query parameter '\(name)' is not supported; put it in the URL's authority or path")
            default:
                guard Self.supportedParameters.contains(name) else {
                    throw fail("query parameter '\(name)' is not a libpq connection keyword this SDK supports")
                }
                parameters[name] = value
            }
        }
        self.init(host: decodedHost, port: port, user: user, password: password, database: database, parameters: parameters)
    }

    private static func parsePort(_ text: Substring, fail: (String) -> KTDBError) throws(KTDBError) -> Int? {
        if text.isEmpty { return nil }
        guard let value = Int(text), (1...65535).contains(value) else { throw fail("invalid port '\(text)'") }
        return value
    }

    /// The SSL mode this URL asks for, if it names one.
    public var sslMode: SSLMode? {
        parameters["sslmode"].flatMap(SSLMode.init)
    }

    /// A copy whose `sslmode` is `mode` unless the URL already names one.
    public func withDefaultSSLMode(_ mode: SSLMode?) -> DatabaseURL {
        guard let mode, parameters["sslmode"] == nil else { return self }
        var copy = self
        copy.parameters["sslmode"] = mode.rawValue
        return copy
    }

    /// libpq keyword/value pairs for `PQconnectdbParams`, values decoded (no URL escaping involved).
    public var connectionKeywords: [(keyword: String, value: String)] {
        var pairs: [(String, String)] = []
        if !host.isEmpty { pairs.append(("host", host)) }
        if let port { pairs.append(("port", String(port))) }
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password.revealedValue)) }
        if let database { pairs.append(("dbname", database)) }
        for key in parameters.keys.sorted() { pairs.append((key, parameters[key]!)) }
        return pairs.map { (keyword: $0.0, value: $0.1) }
    }

    /// The URL as `postgresql://…`, percent-encoded; the password is shown as `******` unless
    /// `includingPassword` is true (only for handing the URL to another program).
    public func urlString(includingPassword: Bool = false) -> String {
        var text = "postgresql://"
        if let user {
            text += Self.encode(user)
            if let password { text += ":" + (includingPassword ? Self.encode(password.revealedValue) : "******") }
            text += "@"
        }
        text += host.contains(":") ? "[\(host)]" : Self.encode(host)
        if let port { text += ":\(port)" }
        if let database { text += "/" + Self.encode(database) }
        if !parameters.isEmpty {
            text += "?" + parameters.keys.sorted().map { "\(Self.encode($0))=\(Self.encode(parameters[$0]!))" }.joined(separator: "&")
        }
        return text
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    private static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// The URL with its password replaced by `******`.
    public var description: String { urlString(includingPassword: false) }
    /// Same as ``description``: the password is never shown.
    public var debugDescription: String { "DatabaseURL(\(description))" }
}
