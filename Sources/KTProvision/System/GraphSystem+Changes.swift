import Foundation
import KTDB
import Logging

extension GraphSystem {
    /// How far back each poll of the change log looks: a change committed this long after its
    /// trigger fired is still seen (the periodic reconcile catches anything later).
    var changeWindow: Duration { max(.seconds(10), configuration.changePollInterval * 20) }

    /// Polls the control plane's log of graph changes and drops the cached sessions of every
    /// graph changed by any process; compares every cached graph with its row from time to time,
    /// and after the control plane was unreachable; prunes the log now and then. Runs until
    /// cancelled.
    func watchChanges() async {
        let repository = GraphRepository(controlPlane, logger: logger)
        var seen: [Int64: ContinuousClock.Instant] = [:]
        var lastReconcile = ContinuousClock.now
        var lastPrune = ContinuousClock.now - .seconds(3600)
        var failing = false
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.changePollInterval)
            } catch {
                return
            }
            let now = ContinuousClock.now
            do {
                for change in try await repository.recentChanges(within: changeWindow) where seen[change.id] == nil {
                    seen[change.id] = now
                    await resolver.invalidate(graphID: change.graphID)
                }
                seen = seen.filter { now - $0.value < changeWindow * 2 }
                if failing {
                    // Changes may have been missed while the control plane was unreachable.
                    await resolver.invalidateAll()
                    failing = false
                    logger.debug("The control plane answers again; every cached graph is re-read")
                }
                if now - lastReconcile >= configuration.reconcileInterval {
                    lastReconcile = now
                    try await reconcile(repository)
                }
                if now - lastPrune >= .seconds(600) {
                    lastPrune = now
                    try await repository.pruneChanges(olderThan: Duration.seconds(3600))
                }
            } catch {
                if !failing { logger.debug("Cannot read the graph change log", metadata: ["kt.error": "\(error)"]) }
                failing = true
            }
        }
    }

    /// Drops every cached graph whose row is gone or changed since it was resolved.
    private func reconcile(_ repository: GraphRepository) async throws {
        let cached = await resolver.cachedGraphs
        guard !cached.isEmpty else { return }
        let current = Dictionary(try await repository.graphs(ids: cached.map(\.id)).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for graph in cached where current[graph.id] != graph {
            await resolver.invalidate(graphID: graph.id)
        }
    }
}
