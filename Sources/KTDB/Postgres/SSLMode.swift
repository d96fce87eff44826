/// A libpq `sslmode`, as an open set of values.
public struct SSLMode: Sendable, Hashable, CustomStringConvertible {
    /// The libpq keyword value (`disable`, `require`, ...).
    public let rawValue: String

    private init(uncheckedRawValue: String) { self.rawValue = uncheckedRawValue }

    /// No TLS.
    public static let disable = SSLMode(uncheckedRawValue: "disable")
    /// Plain first, TLS if the server insists.
    public static let allow = SSLMode(uncheckedRawValue: "allow")
    /// TLS first, plain if the server offers no TLS.
    public static let prefer = SSLMode(uncheckedRawValue: "prefer")
    /// TLS without certificate checks.
    public static let require = SSLMode(uncheckedRawValue: "require")
    /// TLS with a certificate checked against the root CA.
    public static let verifyCA = SSLMode(uncheckedRawValue: "verify-ca")
    /// TLS with certificate and host name checks.
    public static let verifyFull = SSLMode(uncheckedRawValue: "verify-full")

    /// Every mode libpq accepts.
    public static let all: [SSLMode] = [.disable, .allow, .prefer, .require, .verifyCA, .verifyFull]

    /// Parses a libpq mode; `true`/`false` (asyncpg style) map to `require`/`disable`.
    ///
    /// Returns `nil` for anything else.
    public init?(_ text: String) {
        let lowered = text.lowercased()
        switch lowered {
        case "true", "on", "1": self = .require
        case "false", "off", "0": self = .disable
        default:
            guard let mode = SSLMode.all.first(where: { $0.rawValue == lowered }) else { return nil }
            self = mode
        }
    }

    /// The libpq keyword value.
    public var description: String { rawValue }
}
