import Foundation
import KTGraph
import Testing

@Suite("Deterministic keys")
struct GraphKeysTests {
    /// Values computed with CPython 3.11 (`uuid.uuid5`, and the original's `_slugify`).
    static let pythonValues: [(concept: String, key: String, id: String)] = [
        ("Artificial Intelligence", "artificial-intelligence", "a70d20d6-97ab-5d95-91c5-36d979877f31"),
        ("OpenAI", "openai", "90992e84-78bb-5b39-8134-6de7e293f8ce"),
        ("Caf\u{e9} au lait \u{2014} cr\u{e8}me br\u{fb}l\u{e9}e", "caf-au-lait-cr-me-br-l-e", "f50336c6-00a5-5c3f-985e-7816b5acde21"),
        ("\u{6771}\u{4eac} Tokyo", "tokyo", "758bc76e-8b86-57df-b695-41a9ed83eb51"),
        ("  --Hello, World!--  ", "hello-world", "d2ecdfea-1744-5725-9e38-e2363321544f"),
        (
            String(repeating: "x", count: 150) + " " + String(repeating: "y", count: 100),
            String(repeating: "x", count: 150) + "-" + String(repeating: "y", count: 49), "8c0e4a34-4f4e-5b09-87b7-5d7cff5d903c"
        ),
        ("Stra\u{df}e \u{130}stanbul \u{1c5}", "stra-e-i-stanbul", "c94b3f6b-c7ec-58fc-979b-2bdc49ab3b76"),
        ("\u{212a}-means Kelvin", "k-means-kelvin", "d0f8b340-b2e0-5af6-856e-4e49622644fe"),
        ("\u{dc}n\u{ef}c\u{f6}d\u{e9} \u{c6}\u{d8}\u{c5} 123", "n-c-d-123", "1230fffb-8ef9-5c7d-ae5a-5a5d74ee2102"),
        (
            String(repeating: "a", count: 199) + "-b" + String(repeating: "c", count: 10), String(repeating: "a", count: 199),
            "9dc5c2e1-3997-52d6-bbb6-024f1c0a1bc2"
        ),
        ("emoji \u{1f680} launch \u{1f469}\u{200d}\u{1f680}", "emoji-launch", "dfcd7fd3-5539-5c43-81c1-f4906bc4a6e8"),
    ]

    @Test("the namespace is uuid5(NAMESPACE_URL, 'knowledge-tree')")
    func namespace() {
        #expect(GraphKeys.namespace.uuidString.lowercased() == "c257206c-76d5-5d0d-b577-528f1e8db432")
    }

    @Test("node keys and ids match Python for ASCII, non-ASCII and 200+ character concepts")
    func nodeKeys() {
        for value in Self.pythonValues {
            let key = GraphKeys.nodeKey(value.concept)
            #expect(key == value.key, "\(value.concept.prefix(30))")
            #expect(GraphKeys.id(forKey: key).uuidString.lowercased() == value.id)
            #expect(key.count <= 200)
            #expect(GraphKeys.seedKey(value.concept) == key)
        }
    }

    @Test("edge, dimension and source keys match Python; undirected edges ignore node order")
    func otherKeys() {
        #expect(GraphKeys.edgeKey("related", "ml", "ai") == "related:ai--ml")
        #expect(GraphKeys.edgeKey("related", "ai", "ml") == "related:ai--ml")
        #expect(GraphKeys.edgeKey("draws_from", "synthesis-x", "y") == "draws_from:synthesis-x--y")
        #expect(GraphKeys.edgeKey("draws_from", "y", "synthesis-x") == "draws_from:y--synthesis-x")
        #expect(GraphKeys.id(forKey: "related:ai--ml").uuidString.lowercased() == "4845974d-c93c-5b68-b5a4-824309a0a0d9")
        #expect(GraphKeys.dimensionKey(nodeKey: "ai", modelID: "Grok 4.1 Fast") == "ai:grok-4-1-fast:0")
        #expect(GraphKeys.id(forKey: "ai:grok-4-1-fast:0").uuidString.lowercased() == "5bb75cbd-e3fa-5bc3-933f-5baee0faa531")
        #expect(GraphKeys.sourceID(uri: "https://example.org/a?b=c").uuidString.lowercased() == "a7489f50-f60f-542b-b006-ff74866cccc6")
    }
}

@Suite("Embedding services")
struct EmbeddingTests {
    @Test("the local embedder is deterministic, unit length, of the configured size, and closer for shared words")
    func localEmbedder() async throws {
        let embedder = LocalEmbedder(dimensions: 64)
        let vectors = try await embedder.embed(["Quantum computing uses qubits", "quantum computing with qubits", "Baking sourdough bread", ""])
        #expect(vectors.count == 4)
        #expect(vectors.allSatisfy { $0.count == 64 })
        for vector in vectors { #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4) }
        #expect(try await embedder.embed(["Quantum computing uses qubits"]) == [vectors[0]])
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3)
    }
}
