/// A secret string (a password, an API key, a token) that never prints itself.
///
/// `description`, `debugDescription` and string interpolation all show `******`; use
/// ``revealedValue`` only at the point where the secret is handed to a server.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Never log it.
    public let revealedValue: String

    /// Wraps a secret value.
    public init(_ value: String) { self.revealedValue = value }

    /// Whether the secret is the empty string.
    public var isEmpty: Bool { revealedValue.isEmpty }

    /// Always `******`.
    public var description: String { "******" }
    /// Always `Secret(******)`.
    public var debugDescription: String { "Secret(******)" }
}
