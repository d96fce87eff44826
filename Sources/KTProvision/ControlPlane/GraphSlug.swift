public import KTDB

/// A validated graph slug: `^[a-z0-9][a-z0-9_]{1,55}[a-z0-9]$`, never `default`.
///
/// The length limit keeps the schema name `graph_<slug>` within PostgreSQL's 63-byte limit
/// (the original allowed slugs that overflowed it).
public struct GraphSlug: Sendable, Hashable, CustomStringConvertible {
    /// The slug text.
    public let rawValue: String

    /// The slug of the default graph (not a valid slug for a new graph).
    public static let defaultGraphSlug = "default"

    /// Validates a slug for a new graph.
    ///
    /// - Throws: ``KTDBError/Code/invalidArgument`` naming the rule broken, or
    ///   ``KTDBError/Code/reservedKey`` for `default`.
    public init(_ text: String) throws(KTProvisionError) {
        if text == Self.defaultGraphSlug {
            throw KTProvisionError(code: .reservedSlug, message: "the slug 'default' is reserved for the default graph")
        }
        let bytes = Array(text.utf8)
        func allowed(_ b: UInt8, underscore: Bool) -> Bool {
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || (underscore && b == 0x5F)
        }
        guard bytes.count >= 3, bytes.count <= 57 else {
            throw KTProvisionError(code: .invalidSlug, message: "a slug has 3 to 57 characters")
        }
        guard allowed(bytes.first!, underscore: false), allowed(bytes.last!, underscore: false),
            bytes.dropFirst().dropLast().allSatisfy({ allowed($0, underscore: true) })
        else {
            throw KTProvisionError(code: .invalidSlug, message: "a slug uses a-z, 0-9 and _ (not first or last)")
        }
        self.rawValue = text
    }

    /// The graph's schema: `graph_<slug>`.
    public var schemaName: SchemaName {
        // Always valid: at most 63 bytes of [a-z0-9_], not reserved.
        try! SchemaName("graph_" + rawValue)
    }

    /// The slug text.
    public var description: String { rawValue }
}
