/// The names of a graph's three Qdrant collections, decided in one place.
///
/// The default graph uses `facts`, `nodes` and `seeds`; every other graph prefixes them with
/// `<slug>__`, so two graphs never share a collection.
public struct QdrantCollections: Sendable, Hashable {
    /// The prefix: empty for the default graph, `<slug>__` otherwise.
    public let prefix: String

    /// The collections of the default graph.
    public static let defaultGraph = QdrantCollections(prefix: "")

    /// The collections of the graph with `slug`; `default` maps to ``defaultGraph``.
    public init(graphSlug slug: String) {
        self.init(prefix: slug == "default" ? "" : "\(slug)__")
    }

    private init(prefix: String) { self.prefix = prefix }

    /// Fact embeddings.
    public var facts: String { prefix + "facts" }
    /// Node embeddings.
    public var nodes: String { prefix + "nodes" }
    /// Seed embeddings.
    public var seeds: String { prefix + "seeds" }
    /// All three names.
    public var all: [String] { [facts, nodes, seeds] }
}

extension QdrantClient {
    /// Creates a graph's three collections where missing: cosine distance, vectors of
    /// `vectorSize`, int8 quantization (in RAM) on facts (added to an existing facts collection
    /// that lacks it), and a full-text index on facts' `content`.
    /// Idempotent; returns the collections it created.
    @discardableResult
    public func ensureGraphCollections(_ collections: QdrantCollections, vectorSize: Int) async throws -> [String] {
        var created: [String] = []
        let quantization = QdrantScalarQuantization(alwaysRAM: true)
        if try await ensureCollection(collections.facts, vectorSize: vectorSize, quantization: quantization) {
            created.append(collections.facts)
        } else if try await collectionInfo(collections.facts).quantization == nil {
            // An existing facts collection without quantization gets it, as the original did.
            try await updateCollection(collections.facts, quantization: quantization)
        }
        try await createFullTextIndex(collections.facts, field: "content")
        for name in [collections.nodes, collections.seeds] where try await ensureCollection(name, vectorSize: vectorSize) {
            created.append(name)
        }
        return created
    }
}
