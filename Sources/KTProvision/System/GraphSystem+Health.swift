import Foundation
import KTConfig
import KTDB
import KTQdrant
public import Logging

extension GraphSystem {
    /// What is down, checked now and side by side, each check bounded by `timeout`: the control
    /// plane (system graph-db), the system write-db, both databases of every pair named by a
    /// `database_connections` row, and the Qdrant of each. Names only, never a URL or secret;
    /// empty when everything answers.
    public func unavailableComponents(timeout: Duration = .seconds(5), logger: Logger) async -> [String] {
        var checks: [(name: String, check: @Sendable () async throws -> Void)] = [
            ("control plane", { try await self.controlPlane.query("SELECT 1", logger: logger) }),
            ("write-db of 'default'", { try await DatabaseSession(pool: self.systemWritePool).query("SELECT 1", logger: logger) }),
            ("Qdrant of 'default'", { _ = try await self.resources.qdrant(url: self.settings.qdrant.url).listCollections() }),
        ]
        var keys: [String] = []
        do {
            keys = try await GraphRepository(controlPlane, logger: logger).listDatabaseConnections().map(\.configKey)
        } catch {
            // The control plane check reports it.
        }
        for key in keys.sorted() {
            guard let targets = try? GraphTargets.resolve(connectionKey: key, schema: .public, settings: settings) else {
                checks.append(("database pair '\(key)' (not configured in this process)", { throw KTProvisionError(code: .unknownConnection, message: key) }))
                continue
            }
            for (side, endpoint) in [("graph-db", targets.graphEndpoint), ("write-db", targets.writeEndpoint)] {
                checks.append(("\(side) of '\(key)'", { try await DatabaseSession(pool: try self.resources.pool(for: endpoint)).query("SELECT 1", logger: logger) }))
            }
            if !QdrantClient.sameServer(targets.qdrantURL, settings.qdrant.url) {
                checks.append(("Qdrant of '\(key)'", { _ = try await self.resources.qdrant(url: targets.qdrantURL).listCollections() }))
            }
        }
        return await withTaskGroup(of: String?.self) { group in
            for (name, check) in checks {
                group.addTask { await Self.passes(check, within: timeout) ? nil : name }
            }
            return await group.reduce(into: [String]()) { if let name = $1 { $0.append(name) } }.sorted()
        }
    }

    /// Whether `check` succeeds within `timeout`. A check still running then is cancelled;
    /// each one ends at once when cancelled (a connection that is opening, a statement, a
    /// Qdrant call), so the answer never waits much longer than `timeout`.
    private static func passes(_ check: @escaping @Sendable () async throws -> Void, within timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await check()) != nil }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
    }
}
