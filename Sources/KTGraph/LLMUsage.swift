public import Foundation
import KTDB

/// One model call's token usage and cost: plain storage, written by workers to write-db,
/// synced to graph-db after every other table, read back through ``ReadGraphEngine``.
public struct LLMUsage: Sendable, Hashable {
    /// The record's id (a retried write with the same id stores it once).
    public var id: UUID
    /// What the call was for (for example `"dimension"`, `"definition"`), 1 to 100 characters.
    public var taskType: String
    /// The model, 1 to 200 characters.
    public var modelID: String
    /// Prompt tokens (not negative).
    public var promptTokens: Int
    /// Completion tokens (not negative).
    public var completionTokens: Int
    /// Cost in US dollars, when known (not negative).
    public var costUSD: Double?
    /// The conversation the call served, as the caller names it (up to 100 characters).
    public var conversationID: String?
    /// The message the call served (up to 100 characters).
    public var messageID: String?
    /// The workflow run the call belonged to (up to 100 characters).
    public var workflowRunID: String?
    /// When the call was made.
    public var createdAt: Date

    /// Describes a model call's usage.
    public init(
        id: UUID = UUID(), taskType: String, modelID: String, promptTokens: Int = 0, completionTokens: Int = 0, costUSD: Double? = nil,
        conversationID: String? = nil, messageID: String? = nil, workflowRunID: String? = nil, createdAt: Date = Date()
    ) {
        self.id = id
        self.taskType = taskType
        self.modelID = modelID
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.costUSD = costUSD
        self.conversationID = conversationID
        self.messageID = messageID
        self.workflowRunID = workflowRunID
        self.createdAt = createdAt
    }

    static let columns = "id, task_type, model_id, prompt_tokens, completion_tokens, cost_usd, conversation_id, message_id, workflow_run_id, created_at"

    init(row: PostgresRow) throws(KTDBError) {
        id = try row.decode("id", as: UUID.self)
        taskType = try row.decode("task_type", as: String.self)
        modelID = try row.decode("model_id", as: String.self)
        promptTokens = try row.decode("prompt_tokens", as: Int.self)
        completionTokens = try row.decode("completion_tokens", as: Int.self)
        costUSD = try row.decode("cost_usd", as: Double?.self)
        conversationID = try row.decode("conversation_id", as: String?.self)
        messageID = try row.decode("message_id", as: String?.self)
        workflowRunID = try row.decode("workflow_run_id", as: String?.self)
        createdAt = try row.decode("created_at", as: Date.self)
    }

    /// Throws ``KTGraphError/Code/invalidArgument`` naming the first field out of range
    /// (lengths in code points, as PostgreSQL counts a `varchar`'s characters).
    func validate() throws(KTGraphError) {
        func fail(_ message: String) -> KTGraphError { KTGraphError(code: .invalidArgument, message: message) }
        guard (1...100).contains(taskType.unicodeScalars.count) else { throw fail("an LLM usage record needs a task type of 1 to 100 characters") }
        guard (1...200).contains(modelID.unicodeScalars.count) else { throw fail("an LLM usage record needs a model id of 1 to 200 characters") }
        guard promptTokens >= 0, completionTokens >= 0, promptTokens <= Int32.max, completionTokens <= Int32.max else {
            throw fail("token counts must be between 0 and \(Int32.max)")
        }
        if let costUSD, !(costUSD >= 0 && costUSD.isFinite) { throw fail("a cost must be a finite amount of at least 0") }
        for (name, value) in [("conversation id", conversationID), ("message id", messageID), ("workflow run id", workflowRunID)] {
            if let value, value.unicodeScalars.count > 100 { throw fail("a \(name) has at most 100 characters") }
        }
    }

    /// Usage rows newest first, of one conversation if given, from `table`.
    static func list(in table: TableName, conversationID: String?, limit: Int) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: columns) FROM \(table) WHERE (\(conversationID)::text IS NULL OR conversation_id = \(conversationID))
        ORDER BY created_at DESC, id LIMIT \(limit)
        """
    }
}

extension ReadGraphEngine {
    /// Synced usage records, newest first, of one conversation if given.
    public func llmUsage(conversationID: String? = nil, limit: Int = 100) async throws -> [LLMUsage] {
        try await run(LLMUsage.list(in: table.llmUsage, conversationID: conversationID, limit: limit))
            .rows.map { row throws(KTDBError) in try LLMUsage(row: row) }
    }
}

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
