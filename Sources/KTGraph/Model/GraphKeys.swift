import Crypto
public import Foundation

/// Deterministic keys and ids, exactly as the original (`kt_db/keys.py`): write-db rows are keyed
/// by text, graph-db rows and Qdrant points by `uuid5(KT_NAMESPACE, key)`, so all three agree
/// without coordination.
public enum GraphKeys {
    /// RFC 4122's URL namespace (`uuid.NAMESPACE_URL`).
    public static let urlNamespace = UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8")!
    /// `uuid5(NAMESPACE_URL, "knowledge-tree")`.
    public static let namespace = uuid5(namespace: urlNamespace, name: "knowledge-tree")
    /// Edge types whose key and stored direction ignore the order of the two nodes (the original's `UNDIRECTED_EDGE_TYPES`).
    public static let undirectedEdgeTypes: Set<String> = ["related"]

    /// A name-based (SHA-1) UUID, version 5, as Python's `uuid.uuid5`.
    public static func uuid5(namespace: UUID, name: String) -> UUID {
        var hasher = Insecure.SHA1()
        withUnsafeBytes(of: namespace.uuid) { hasher.update(bufferPointer: $0) }
        var name = name
        name.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        hasher.finalize().withUnsafeBytes { digest in
            withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: digest.prefix(16))) }
        }
        uuid.6 = (uuid.6 & 0x0F) | 0x50
        uuid.8 = (uuid.8 & 0x3F) | 0x80
        return UUID(uuid: uuid)
    }

    /// `key_to_uuid`: the graph-db and Qdrant id of a write-db key.
    public static func id(forKey key: String) -> UUID { uuid5(namespace: namespace, name: key) }

    /// `_slugify`: lower-case (full Unicode mapping, as Python's `str.lower`), every run of
    /// characters outside `[a-z0-9]` becomes one `-`, `-` trimmed at both ends, at most
    /// `maxLength` characters (then trailing `-` trimmed again).
    public static func slugify(_ text: String, maxLength: Int = 200) -> String {
        // A slug is ASCII (`a-z`, `0-9`, `-`), so it is built as bytes and its length in
        // characters is its length in bytes. ASCII text is lower-cased byte by byte; other text
        // takes Unicode's full lower-case mapping first (`İ` becomes `i` and a combining dot).
        var slug: [UInt8] = []
        var pendingDash = false
        func add(_ byte: UInt8) {
            let isAlphanumeric = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            if isAlphanumeric {
                if pendingDash, !slug.isEmpty { slug.append(UInt8(ascii: "-")) }
                pendingDash = false
                slug.append(byte)
            } else {
                pendingDash = true
            }
        }
        var text = text
        let ascii = text.withUTF8 { utf8 in
            guard utf8.allSatisfy({ $0 < 0x80 }) else { return false }
            slug.reserveCapacity(utf8.count)
            for byte in utf8 { add(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte) }
            return true
        }
        if !ascii {
            for scalar in text.lowercased().unicodeScalars { add(scalar.isASCII ? UInt8(scalar.value) : 0x80) }
        }
        if slug.count > maxLength {
            slug.removeLast(slug.count - maxLength)
            while slug.last == UInt8(ascii: "-") { slug.removeLast() }
        }
        return String(decoding: slug, as: UTF8.self)
    }

    /// `make_node_key(concept)`.
    public static func nodeKey(_ concept: String) -> String { slugify(concept) }

    /// `make_seed_key(name)`: the same as the node key, so a seed promotes to the node with its key.
    public static func seedKey(_ name: String) -> String { slugify(name) }

    /// `make_edge_key(rel, a, b)`: `rel:a--b`, with `a` and `b` sorted (by code point, as Python) for undirected types.
    public static func edgeKey(_ relationshipType: RelationshipType, _ a: String, _ b: String) -> String {
        let (source, target) = orderedNodeKeys(relationshipType, a, b)
        return "\(relationshipType):\(source)--\(target)"
    }

    /// The write-db order of an edge's node keys: sorted by code point for undirected types, as given otherwise.
    public static func orderedNodeKeys(_ relationshipType: RelationshipType, _ a: String, _ b: String) -> (String, String) {
        undirectedEdgeTypes.contains(relationshipType.rawValue) && b.unicodeScalars.lexicographicallyPrecedes(a.unicodeScalars) ? (b, a) : (a, b)
    }

    /// The graph-db order of an edge's node ids: the smaller UUID first for undirected types (the
    /// order PostgreSQL compares `uuid` values in), as given otherwise.
    public static func orderedNodeIDs(_ relationshipType: RelationshipType, _ a: UUID, _ b: UUID) -> (UUID, UUID) {
        undirectedEdgeTypes.contains(relationshipType.rawValue) && b.uuidString.lowercased() < a.uuidString.lowercased() ? (b, a) : (a, b)
    }

    /// `make_dimension_key(node_key, model_id, batch_index)`: `node_key:<slug(model_id)>:batch_index`.
    public static func dimensionKey(nodeKey: String, modelID: String, batchIndex: Int = 0) -> String {
        "\(nodeKey):\(slugify(modelID)):\(batchIndex)"
    }

    /// `make_source_key(uri)`: `source:<uri>`.
    public static func sourceKey(uri: String) -> String { "source:\(uri)" }

    /// `uri_to_source_id(uri)`.
    public static func sourceID(uri: String) -> UUID { id(forKey: sourceKey(uri: uri)) }
}
