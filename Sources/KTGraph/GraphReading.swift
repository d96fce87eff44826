public import Foundation

/// The reads both engines offer, with one signature each (ADR-001: an agent tool written
/// against `any GraphReading` works with a ``WorkerGraphEngine`` on write-db, as a worker
/// sees its own writes at once, and with a ``ReadGraphEngine`` on graph-db, as the API does).
///
/// Nodes, facts and edges are addressed by the ids graph-db uses (a write-db row's id is
/// derived from its key, ``GraphKeys/id(forKey:)``), so the same id finds the same node in
/// both. Defaults for the optional arguments are in the extension below.
public protocol GraphReading: Sendable {
    /// A node by id, or `nil`.
    func node(id: UUID) async throws -> GraphNode?
    /// Nodes by id (missing ones left out).
    func nodes(ids: [UUID]) async throws -> [GraphNode]
    /// A node's children, by concept.
    func children(of parentID: UUID) async throws -> [GraphNode]
    /// The perspective nodes of a concept node.
    func perspectives(of conceptID: UUID) async throws -> [GraphNode]
    /// A node's edges in `direction`.
    func edges(of nodeID: UUID, direction: EdgeDirection) async throws -> [GraphEdge]
    /// A node's dimensions.
    func dimensions(of nodeID: UUID) async throws -> [GraphDimension]
    /// Facts by id (missing ones left out).
    func facts(ids: [UUID]) async throws -> [GraphFact]
    /// The facts linked to a node.
    func nodeFacts(of nodeID: UUID) async throws -> [GraphFact]
    /// The facts linked to a node, each with its sources.
    func nodeFactsWithSources(of nodeID: UUID) async throws -> [FactWithSources]
    /// Where a fact came from.
    func factSources(of factID: UUID) async throws -> [GraphFactSource]
    /// A raw source by id, or `nil`.
    func rawSource(id: UUID) async throws -> GraphRawSource?
    /// A node's convergence report, or `nil`.
    func convergenceReport(of nodeID: UUID) async throws -> GraphConvergenceReport?
    /// The facts rejected for a node.
    func rejectedFactIDs(nodeID: UUID) async throws -> Set<UUID>
    /// A node's saved versions, oldest first.
    func history(of nodeID: UUID) async throws -> [GraphNodeVersion]
    /// Nodes whose concept contains `text` (shortest first), optionally of one type.
    func searchNodes(_ text: String, limit: Int, nodeType: NodeType?) async throws -> [GraphNode]
    /// Trigram-similar concepts, best first, optionally of one type.
    func searchNodesByTrigram(_ text: String, threshold: Double, limit: Int, nodeType: NodeType?) async throws -> [GraphNode]
    /// Nodes whose vectors are within cosine distance `threshold` of `embedding`, in Qdrant's order.
    func findSimilarNodes(embedding: [Float], threshold: Double, limit: Int, nodeType: NodeType?) async throws -> [GraphNode]
    /// Nodes sharing the most facts with a node.
    func findNodesSharingFacts(with nodeID: UUID, limit: Int) async throws -> [NodeWithCount]
    /// Nodes holding facts similar to the given fact embeddings.
    func findNodesWithSimilarFacts(factEmbeddings: [[Float]], excluding nodeID: UUID?, threshold: Double, limit: Int) async throws -> [NodeWithCount]
    /// Nodes holding facts near `embedding` that `sourceNodeID` does not hold yet.
    func findNodesByEmbeddingFacts(embedding: [Float], sourceNodeID: UUID, threshold: Double, nodeLimit: Int) async throws -> [NodeWithCount]
}

extension GraphReading {
    /// A node's edges in both directions.
    public func edges(of nodeID: UUID) async throws -> [GraphEdge] { try await edges(of: nodeID, direction: .both) }
    /// Nodes whose concept contains `text` (at most 10, any type).
    public func searchNodes(_ text: String) async throws -> [GraphNode] { try await searchNodes(text, limit: 10, nodeType: nil) }
    /// Trigram-similar concepts (similarity ≥ 0.3, at most 5, any type).
    public func searchNodesByTrigram(_ text: String) async throws -> [GraphNode] { try await searchNodesByTrigram(text, threshold: 0.3, limit: 5, nodeType: nil) }
    /// Nodes within cosine distance 0.3 of `embedding` (at most 10, any type).
    public func findSimilarNodes(embedding: [Float]) async throws -> [GraphNode] {
        try await findSimilarNodes(embedding: embedding, threshold: 0.3, limit: 10, nodeType: nil)
    }
    /// `is_node_stale`: whether the node is older than its `staleAfter` days.
    public func isNodeStale(_ node: GraphNode, now: Date = Date()) -> Bool { NodeMetrics.isStale(node, now: now) }
    /// `compute_richness`.
    public func computeRichness(_ node: GraphNode, factCount: Int, dimensionCount: Int) -> Double {
        NodeMetrics.richness(node, factCount: factCount, dimensionCount: dimensionCount)
    }
}

extension WorkerGraphEngine: GraphReading {}
extension ReadGraphEngine: GraphReading {}
