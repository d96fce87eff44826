import Foundation
import KTDB

/// `write_llm_usage` → `llm_usage`.
extension SyncEngine {
    /// Usage rows have no parent: each is upserted as write-db has it, or deleted when gone.
    func applyLLMUsage(_ keys: [String], _ w: PostgresTransaction, _ t: PostgresTransaction) async throws -> Outcomes {
        var outcomes = Self.allApplied(keys)
        let (ids, _) = uuidKeys(keys, &outcomes)
        var present: Set<String> = [], documents: [String] = []
        for row in try await w.query(
            """
            SELECT u.id, (to_jsonb(u) - 'updated_at')::text FROM unnest(\(ids)::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT * FROM \(writeDB.llmUsage) WHERE id = k.id OFFSET 0) u
            """
        ).rows {
            present.insert(try row.decode(0, as: UUID.self).postgresText)
            documents.append(try row.decode(1, as: String.self))
        }
        let deleted = ids.filter { !present.contains($0) }
        if !deleted.isEmpty { try await t.query("DELETE FROM \(graphDB.llmUsage) WHERE id IN (SELECT unnest(\(deleted)::uuid[]))") }
        guard !documents.isEmpty else { return outcomes }
        try await t.query(
            """
            INSERT INTO \(graphDB.llmUsage) (\(unsafeRaw: LLMUsage.columns))
            SELECT \(unsafeRaw: LLMUsage.columns) FROM jsonb_populate_recordset(NULL::\(graphDB.llmUsage), \(Self.jsonArray(documents)))
            ON CONFLICT (id) DO UPDATE SET task_type = EXCLUDED.task_type, model_id = EXCLUDED.model_id, prompt_tokens = EXCLUDED.prompt_tokens,
                completion_tokens = EXCLUDED.completion_tokens, cost_usd = EXCLUDED.cost_usd, conversation_id = EXCLUDED.conversation_id,
                message_id = EXCLUDED.message_id, workflow_run_id = EXCLUDED.workflow_run_id, created_at = EXCLUDED.created_at
            """)
        return outcomes
    }
}

extension TableSyncer {
    /// `write_llm_usage` → graph-db.
    static let llmUsage = TableSyncer(table: .llmUsage, keyColumn: "id::text") { engine, keys, w, t, _ in
        try await engine.applyLLMUsage(keys, w, t)
    }
}
