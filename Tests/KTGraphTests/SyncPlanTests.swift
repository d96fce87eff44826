import Foundation
import Testing

@testable import KTGraph

/// The sync's planning, without a server (issue 19, item 4).
@Suite("Sync planning")
struct SyncPlanTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("a watermark moves to the last row read, stays strictly below the bound, and never backwards")
    func watermarks() {
        #expect(SyncPlan.watermarkTarget(from: t0, through: t0 + 5, bound: t0 + 10) == t0 + 5)
        // A row at the bound may have company still uncommitted: stop just below it.
        let capped = SyncPlan.watermarkTarget(from: t0, through: t0 + 10, bound: t0 + 10)
        #expect(capped != nil && capped! < t0 + 10 && capped! > t0 + 9.99)
        #expect(SyncPlan.watermarkTarget(from: t0 + 5, through: t0 + 5, bound: t0 + 10) == nil)
        #expect(SyncPlan.watermarkTarget(from: t0 + 5, through: t0 + 3, bound: t0 + 10) == nil)
        #expect(SyncPlan.watermarkTarget(from: t0, through: t0 + 5, bound: t0) == nil)
    }

    @Test("a table reads another batch only after a full one below the bound, and at most its batches per cycle")
    func batches() {
        func after(_ rows: Int, last: Date, number: Int) -> (Bool, Bool) {
            let plan = SyncPlan.afterBatch(rows: rows, batchSize: 100, last: last, bound: t0 + 10, batchNumber: number, batchesPerTable: 3)
            return (plan.readsAhead, plan.reachedLimit)
        }
        #expect(after(100, last: t0 + 1, number: 1) == (true, false))
        #expect(after(99, last: t0 + 1, number: 1) == (false, false))
        #expect(after(100, last: t0 + 10, number: 1) == (false, false))
        #expect(after(100, last: t0 + 1, number: 2) == (true, false))
        #expect(after(100, last: t0 + 1, number: 3) == (false, true))
    }

    @Test("outcomes: applied rows leave the queue (counted as recovered on a retry), deferrals retry next cycle, failures back off; one queue row per key")
    func outcomes() {
        let outcomes: [SyncEngine.Outcome] = [
            .init(table: "write_nodes", key: "a", result: .applied),
            .init(table: "write_tombstones", key: "write_nodes:z", result: .applied),
            .init(table: "write_edges", key: "e", result: .deferred("waits for node b")),
            .init(table: "write_facts", key: "f", result: .failed("bad row")),
            .init(table: "write_edges", key: "e", result: .failed("still bad")),
        ]
        let first = SyncPlan.queueChanges(outcomes, retrying: false, retryBase: 30)
        #expect(first.report.applied == ["write_nodes": 1])
        #expect(first.report.deferred == 1 && first.report.failed == 2 && first.report.recovered == 0)
        #expect(first.cleared.map { "\($0.0)/\($0.1)" } == ["write_nodes/a", "write_tombstones/write_nodes:z"])
        #expect(
            first.queued == [
                .init(table: "write_edges", key: "e", reason: "still bad", base: 30),
                .init(table: "write_facts", key: "f", reason: "bad row", base: 30),
            ])
        let retried = SyncPlan.queueChanges([.init(table: "write_nodes", key: "a", result: .applied)], retrying: true, retryBase: 30)
        #expect(retried.report.recovered == 1 && retried.report.applied.isEmpty)
        #expect(SyncPlan.queueChanges([.init(table: "write_edges", key: "e", result: .deferred("parent"))], retrying: false, retryBase: 30).queued.first?.base == 0)
    }

    @Test("the registry: one syncer per table, parents before the rows that point at them, each with its key column")
    func registry() {
        let tables = SyncEngine.syncers.map(\.table)
        #expect(Set(tables).count == tables.count && tables == SyncEngine.tables)
        func before(_ a: WriteTable, _ b: WriteTable) -> Bool { (tables.firstIndex(of: a) ?? .max) < (tables.firstIndex(of: b) ?? .min) }
        #expect(before(.rawSources, .factSources) && before(.facts, .factSources))
        #expect(before(.facts, .nodes) && before(.nodes, .edges) && before(.nodes, .dimensions))
        #expect(before(.nodes, .nodeCounters) && before(.nodes, .nodeVersions) && tables.last == .llmUsage)
        #expect(SyncEngine.keyColumn(.nodes) == "key" && SyncEngine.keyColumn(.nodeCounters) == "node_key" && SyncEngine.keyColumn(.facts) == "id::text")
    }

    @Test("dependents: a row whose parents are all in graph-db is ready; else it waits with the reason of its first missing parent (a row naming no parent waits too)")
    func readiness() {
        struct Edge { var id: String, source: String, target: String }
        let nodes: Set = ["a", "b"]
        let edges = [Edge(id: "e1", source: "a", target: "b"), Edge(id: "e2", source: "a", target: "c"), Edge(id: "e3", source: "c", target: "d")]
        let (ready, waiting) = SyncPlan.readiness(edges) { edge in [edge.source, edge.target].map { (id: String) in SyncPlan.Need(id: id, present: nodes, reason: "node \(id) missing") } }
        #expect(ready.map(\.id) == ["e1"])
        #expect(waiting.map(\.row.id) == ["e2", "e3"] && waiting.map(\.reason) == ["node c missing", "node c missing"])
        // Two kinds of parent, each checked against its own ids: the first missing one is named.
        let facts: Set = ["f1"], sources: Set = ["s1"]
        let rows = [("f1", "s1"), ("f2", "s1"), ("f1", "s2"), ("f2", "s2")]
        let split = SyncPlan.readiness(rows) {
            [SyncPlan.Need(id: $0.0, present: facts, reason: "fact"), SyncPlan.Need(id: $0.1, present: sources, reason: "source")]
        }
        #expect(split.ready.count == 1 && split.deferred.map(\.reason) == ["fact", "source", "fact"])
        #expect(SyncPlan.readiness([1]) { _ in [SyncPlan.Need(id: nil, present: ["x"], reason: "no source")] }.deferred.map(\.reason) == ["no source"])
    }

    @Test("dependents: what waits for a batch's nodes is applied for the nodes new to graph-db only; new nodes created before the watermark are looked up")
    func newNodeDependents() {
        typealias D = SyncEngine.Dependents
        let keys = ["old", "fresh", "recreated"], ids = keys.map(GraphKeys.id(forKey:))
        let predicted = D(entries: [
            .init(kind: .child, value: "c1", nodeKey: "fresh"), .init(kind: .edge, value: "old->fresh", nodeKey: "old"),
            .init(kind: .edge, value: "old->fresh", nodeKey: "fresh"), .init(kind: .version, value: "v1", nodeKey: "old"),
        ])
        let (waiting, lookUp) = SyncPlan.newNodeDependents(
            keys: keys, ids: ids, existing: [ids[0]], predicted: predicted, createdSinceWatermark: ["old", "fresh"])
        #expect(Set(waiting.entries.map(\.nodeKey)) == ["fresh"])
        #expect(waiting.values(.edge) == ["old->fresh"] && waiting.values(.child) == ["c1"] && waiting.values(.version).isEmpty)
        #expect(waiting.pointers(.child).map(\.1) == [GraphKeys.id(forKey: "fresh").uuidString.lowercased()])
        #expect(lookUp == ["recreated"])
        // Nothing new: nothing waits, nothing to look up.
        let none = SyncPlan.newNodeDependents(keys: keys, ids: ids, existing: Set(ids), predicted: predicted, createdSinceWatermark: keys)
        #expect(none.waiting.entries.isEmpty && none.lookUp.isEmpty)
    }
}
