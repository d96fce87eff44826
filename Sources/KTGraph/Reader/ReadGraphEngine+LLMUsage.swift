import Foundation

/// Synced LLM usage records in graph-db.
extension ReadGraphEngine {
    /// Synced usage records, newest first, of one conversation if given.
    public func llmUsage(conversationID: String? = nil, limit: Int = 100) async throws -> [LLMUsage] { try await llmUsageStore.llmUsage(conversationID: conversationID, limit: limit) }
}
