import Foundation
import KTDB

/// The set-based sync of raw sources, fact sources, prohibited chunks, convergence reports and
/// node versions (the same contract as the other tables: applying a key makes graph-db match
/// the current write-db state of that key; a row whose parent has not arrived is deferred).
///
/// No "phantom" sources: the original stubbed a raw source for a fact source whose source row
/// was missing; here such a fact source waits (deferred) until its raw source arrives, and a
/// raw source new to graph-db brings the fact sources and chunks that cite it.
extension SyncEngine {
    /// Parses UUID keys (the others fail): the distinct ids as lower-case text, and the key of each id.
    func uuidKeys(_ keys: [String], _ outcomes: inout Outcomes) -> (ids: [String], keyOfID: [String: String]) {
        var ids: [String] = [], keyOfID: [String: String] = [:]
        for key in keys {
            if let id = UUID(uuidString: key)?.postgresText {
                if keyOfID.updateValue(key, forKey: id) == nil { ids.append(id) }
            } else {
                outcomes[key] = .failed("not a uuid: \(key)")
            }
        }
        return (ids, keyOfID)
    }
}
