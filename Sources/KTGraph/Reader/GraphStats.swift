import Foundation
import KTDB

/// Recomputes the denormalised counters of nodes (set-based; absent children count 0).
enum GraphStats {
    /// Recomputes the denormalised counts of `ids` and writes the rows whose counts changed
    /// (an unchanged node gets no new row version). Nodes are found by primary key one by one,
    /// whatever the planner's statistics say about the table.
    static func refresh(_ ids: [UUID], in table: GraphTables, _ t: PostgresTransaction) async throws {
        guard !ids.isEmpty else { return }
        let changed = try await t.query(
            """
            SELECT m.id, x.facts, x.edges, x.children, x.dimensions
            FROM unnest(\(ids.map(\.postgresText))::uuid[]) AS k(id)
            CROSS JOIN LATERAL (SELECT id, fact_count, edge_count, child_count, dimension_count FROM \(table.nodes) WHERE id = k.id OFFSET 0) m
            CROSS JOIN LATERAL (SELECT (SELECT count(*) FROM \(table.nodeFacts) nf WHERE nf.node_id = m.id) AS facts,
                                       (SELECT count(*) FROM \(table.edges) e WHERE e.source_node_id = m.id OR e.target_node_id = m.id) AS edges,
                                       (SELECT count(*) FROM \(table.nodes) ch WHERE ch.parent_id = m.id) AS children,
                                       (SELECT count(*) FROM \(table.dimensions) d WHERE d.node_id = m.id) AS dimensions) x
            WHERE (m.fact_count, m.edge_count, m.child_count, m.dimension_count) IS DISTINCT FROM (x.facts, x.edges, x.children, x.dimensions)
            """
        ).rows
        guard !changed.isEmpty else { return }
        var columns: [[String]] = Array(repeating: [], count: 5)
        for row in changed {
            for index in 0..<5 { columns[index].append(try row.decode(index, as: String.self)) }
        }
        try await t.query(
            """
            UPDATE \(table.nodes) n SET fact_count = c.facts, edge_count = c.edges, child_count = c.children, dimension_count = c.dimensions
            FROM unnest(\(columns[0])::uuid[], \(columns[1])::int[], \(columns[2])::int[], \(columns[3])::int[], \(columns[4])::int[])
                 AS c(id, facts, edges, children, dimensions)
            WHERE n.id = c.id
            """)
    }
}
