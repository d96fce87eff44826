import Foundation
import KTDB
import KTQdrant
import Logging

/// LLM usage records in write-db.
struct WriteLLMUsageStore: WorkerStore {
    let context: WorkerContext

    /// Stores a model call's usage; storing the same id again keeps the first record.
    @discardableResult
    func recordLLMUsage(_ usage: LLMUsage) async throws -> LLMUsage {
        try usage.validate()
        let stored = try await run(
            """
            WITH added AS (
                INSERT INTO \(table.llmUsage) (id, task_type, model_id, prompt_tokens, completion_tokens, cost_usd, conversation_id, message_id,
                                             workflow_run_id, created_at, updated_at)
                VALUES (\(usage.id), \(usage.taskType), \(usage.modelID), \(usage.promptTokens), \(usage.completionTokens), \(usage.costUSD),
                        \(usage.conversationID), \(usage.messageID), \(usage.workflowRunID), \(usage.createdAt), clock_timestamp())
                ON CONFLICT (id) DO NOTHING RETURNING \(unsafeRaw: LLMUsage.columns))
            SELECT * FROM added UNION ALL SELECT \(unsafeRaw: LLMUsage.columns) FROM \(table.llmUsage) WHERE id = \(usage.id) AND NOT EXISTS (SELECT 1 FROM added)
            """)
        guard let row = stored.first else { throw KTGraphError(code: .notFound, message: "LLM usage \(usage.id) was not stored") }
        return try LLMUsage(row: row)
    }

    /// Usage records in write-db, newest first, of one conversation if given.
    func llmUsage(conversationID: String? = nil, limit: Int = 100) async throws -> [LLMUsage] {
        try await run(LLMUsage.list(in: table.llmUsage, conversationID: conversationID, limit: limit))
            .rows.map { row throws(KTDBError) in try LLMUsage(row: row) }
    }

    /// Deletes a usage record (the sync deletes it from graph-db too).
    @discardableResult
    func deleteLLMUsage(id: UUID) async throws -> Bool {
        try await run("DELETE FROM \(table.llmUsage) WHERE id = \(id) RETURNING id").first != nil
    }
}
