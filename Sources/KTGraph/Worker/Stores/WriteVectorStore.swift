import Foundation
import KTDB
import KTQdrant
import Logging

/// The worker's Qdrant writes: an index over write-db, whose failures are logged and never undo a row.
struct WriteVectorStore: WorkerStore {
    let context: WorkerContext

    func upsertNodePoint(_ node: GraphNode, embedding: [Float]?) async {
        guard qdrant != nil else { return }
        var vector = embedding
        if vector == nil, let embedder { vector = try? await embedder.embed(node.concept) }
        guard let vector else { return }
        await qdrantCall("upsert node point") {
            try await $0.upsert(
                collections.nodes,
                points: [
                    QdrantPoint(
                        id: node.id, vector: vector,
                        payload: [
                            "concept": .string(node.concept), "node_type": .string(node.nodeType.rawValue),
                        ])
                ])
        }
    }

    func upsertFactPoints(_ facts: [GraphFact], embeddings: [[Float]]?) async {
        guard qdrant != nil, !facts.isEmpty else { return }
        var vectors = embeddings
        if vectors == nil, let embedder { vectors = try? await embedder.embed(facts.map(\.content)) }
        guard let vectors, vectors.count == facts.count else { return }
        let nodeIDs = (try? await nodeIDsByFact(Set(facts.map(\.id)))) ?? [:]
        let points = zip(facts, vectors).map { fact, vector in
            QdrantPoint(
                id: fact.id, vector: vector,
                payload: [
                    "content": .string(fact.content), "fact_type": .string(fact.factType.rawValue),
                    "node_ids": .array((nodeIDs[fact.id] ?? []).map { .string($0.uuidString.lowercased()) }),
                ])
        }
        await qdrantCall("upsert fact points") { try await $0.upsertChunked(collections.facts, points: points) }
    }

    func nodeIDsByFact(_ factIDs: Set<UUID>) async throws -> [UUID: [UUID]] {
        let texts = factIDs.map { $0.uuidString.lowercased() }
        var result: [UUID: [UUID]] = [:]
        for row in try await run(
            """
            SELECT f AS fact_id, array_agg(n.node_uuid::text ORDER BY n.node_uuid) AS node_ids
            FROM \(table.nodes) n, unnest(n.fact_ids) f WHERE n.fact_ids && \(texts)::text[] AND f = ANY(\(texts)::text[]) GROUP BY f
            """
        ).rows {
            if let fact = UUID(uuidString: try row.decode("fact_id", as: String.self)) {
                result[fact] = uuids(try row.decode("node_ids", as: [String].self))
            }
        }
        return result
    }

    /// Sets each fact's Qdrant `node_ids` to the nodes that list it in write-db (the whole set,
    /// so concurrent workers converge on the stored truth).
    func syncNodeIDsPayload(factIDs: Set<UUID>) async {
        guard qdrant != nil, !factIDs.isEmpty else { return }
        do {
            let byFact = try await nodeIDsByFact(factIDs)
            for fact in factIDs {
                let ids = (byFact[fact] ?? []).map { JSONValue.string($0.uuidString.lowercased()) }
                await qdrantCall("set node_ids") { try await $0.setPayload(collections.facts, payload: ["node_ids": .array(ids)], ids: [fact]) }
            }
        } catch {
            logger.warning("could not read node ids for the Qdrant payload", metadata: ["kt.error": "\(error)"])
        }
    }

    func qdrantCall(_ what: String, _ body: (QdrantClient) async throws -> Void) async {
        guard let qdrant else { return }
        do {
            try await body(qdrant)
        } catch {
            // A cancelled task (a shutdown, a caller that gave up) is not a failure to report.
            let level: Logger.Level = (error as? KTQdrantError)?.code == .cancelled ? .debug : .warning
            logger.log(level: level, "Qdrant call failed; write-db is committed and a retry converges", metadata: ["kt.operation": "\(what)", "kt.error": "\(error)"])
        }
    }

    /// Upserts a node's Qdrant point with `embedding` (payload `concept`, `node_type`); Qdrant failures
    /// are logged, not thrown (write-db stays the truth).
    func upsertNodeVector(_ node: GraphNode, embedding: [Float]) async {
        await upsertNodePoint(node, embedding: embedding)
    }

    /// Upserts facts' Qdrant points with their embeddings (payload `content`, `fact_type`, `node_ids`);
    /// Qdrant failures are logged, not thrown.
    func upsertFactVectors(_ items: [(fact: GraphFact, embedding: [Float])]) async {
        await upsertFactPoints(items.map(\.fact), embeddings: items.map(\.embedding))
    }
}
