public import Foundation

/// LLM usage records in write-db.
extension WorkerGraphEngine {
    /// Stores a model call's usage; storing the same id again keeps the first record.
    ///
    /// - Returns: The stored record.
    /// - Throws: ``KTGraphError/Code/invalidArgument`` for an empty task type or model id, a
    ///   negative count or cost, or a field longer than its column.
    @discardableResult
    public func recordLLMUsage(_ usage: LLMUsage) async throws -> LLMUsage { try await llmUsageStore.recordLLMUsage(usage) }

    /// Usage records in write-db, newest first, of one conversation if given.
    public func llmUsage(conversationID: String? = nil, limit: Int = 100) async throws -> [LLMUsage] { try await llmUsageStore.llmUsage(conversationID: conversationID, limit: limit) }

    /// Deletes a usage record (the sync deletes it from graph-db too).
    ///
    /// - Returns: Whether it existed.
    @discardableResult
    public func deleteLLMUsage(id: UUID) async throws -> Bool { try await llmUsageStore.deleteLLMUsage(id: id) }
}
