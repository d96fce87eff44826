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
