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
