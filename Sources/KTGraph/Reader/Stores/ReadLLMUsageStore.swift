import Foundation
import KTDB
import KTQdrant
import Logging

/// Synced LLM usage records in graph-db.
struct ReadLLMUsageStore: ReaderStore {
    let context: ReaderContext

    /// Synced usage records, newest first, of one conversation if given.
    func llmUsage(conversationID: String? = nil, limit: Int = 100) async throws -> [LLMUsage] {
        try await run(LLMUsage.list(in: table.llmUsage, conversationID: conversationID, limit: limit))
            .rows.map { row throws(KTDBError) in try LLMUsage(row: row) }
    }
}
