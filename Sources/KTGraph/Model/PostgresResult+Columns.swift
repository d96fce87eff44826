import Foundation
import KTDB

extension PostgresResult {
    /// Column `index` of every row as UUIDs.
    func uuids(_ index: Int) throws(KTDBError) -> [UUID] { try rows.map { row throws(KTDBError) in try row.decode(index, as: UUID.self) } }
    /// Column `index` of every row as UUIDs, NULLs left out.
    func optionalUUIDs(_ index: Int) throws(KTDBError) -> [UUID] {
        var ids: [UUID] = []
        for row in rows { if let id = try row.decode(index, as: UUID?.self) { ids.append(id) } }
        return ids
    }
    /// Every row's (UUID, count) from columns 0 and 1.
    func idCounts() throws(KTDBError) -> [(UUID, Int)] {
        try rows.map { row throws(KTDBError) in (try row.decode(0, as: UUID.self), try row.decode(1, as: Int.self)) }
    }
    /// Column `index` of every row as strings.
    func strings(_ index: Int) throws(KTDBError) -> [String] { try rows.map { row throws(KTDBError) in try row.decode(index, as: String.self) } }
}
