public import Foundation
import KTConfig
import KTDB
import KTGraph
public import Logging

extension GraphSystem {
    /// Estimated node counts of `graphs`, from PostgreSQL's cumulative statistics (live tuples of
    /// each schema's `nodes` table, which lag the data by about a second): one statement per
    /// graph-db database, whatever the number of graphs, and no connection per graph. Graphs that are not active, and graphs
    /// whose database cannot be read, are left out.
    ///
    /// - Parameter known: the `database_connections` rows when the caller has them already
    ///   (else they are read when a graph needs them).
    public func estimatedNodeCounts(for graphs: [Graph], connections known: [DatabaseConnectionRecord]? = nil, logger: Logger) async -> [UUID: Int] {
        let active = graphs.filter { $0.status.isServing }
        guard !active.isEmpty else { return [:] }
        var connections: [UUID: DatabaseConnectionRecord] = [:]
        if let known {
            for row in known { connections[row.id] = row }
        } else if active.contains(where: { $0.databaseConnectionID != nil }) {
            do {
                for row in try await GraphRepository(controlPlane, logger: logger).listDatabaseConnections() { connections[row.id] = row }
            } catch {
                logger.debug("Cannot read the database connections for node counts", metadata: ["kt.error": "\(error)"])
            }
        }
        // Graphs grouped by the pool of their graph-db.
        var byDatabase: [ObjectIdentifier: (pool: PostgresConnectionPool, graphs: [(id: UUID, schema: String)])] = [:]
        for graph in active {
            let connection = graph.databaseConnectionID.flatMap { connections[$0] }
            if graph.databaseConnectionID != nil, connection == nil { continue }
            guard let targets = try? GraphTargets.resolve(for: graph, connection: connection, settings: settings),
                let pool = try? resources.pool(for: targets.graphEndpoint)
            else { continue }
            byDatabase[ObjectIdentifier(pool), default: (pool, [])].graphs.append((graph.id, targets.schema.rawValue))
        }
        return await withTaskGroup(of: [UUID: Int].self) { group in
            for (_, entry) in byDatabase {
                group.addTask { await Self.estimates(entry.graphs, on: entry.pool, logger: logger) }
            }
            return await group.reduce(into: [:]) { $0.merge($1) { first, _ in first } }
        }
    }

    private static func estimates(_ graphs: [(id: UUID, schema: String)], on pool: PostgresConnectionPool, logger: Logger) async -> [UUID: Int] {
        do {
            // Driven by the schema names through pg_class's (relname, relnamespace) index; the
            // statistics function runs for those tables only (pg_stat_user_tables would compute
            // it for every table of the database).
            let result = try await DatabaseSession(pool: pool).query(
                """
                SELECT s.name, pg_stat_get_live_tuples(c.oid)
                FROM unnest(\(graphs.map(\.schema))::text[]) AS s(name)
                JOIN pg_namespace n ON n.nspname = s.name
                JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'nodes' AND c.relkind = 'r'
                """, logger: logger)
            var bySchema: [String: Int] = [:]
            for row in result.rows { bySchema[try row.decode(0, as: String.self)] = Int(try row.decode(1, as: Int64.self)) }
            return Dictionary(graphs.compactMap { graph in bySchema[graph.schema].map { (graph.id, max(0, $0)) } }, uniquingKeysWith: { first, _ in first })
        } catch {
            logger.debug("Cannot read node estimates", metadata: ["kt.db.pool": "\(pool.configuration.label)", "kt.error": "\(error)"])
            return [:]
        }
    }

    /// The exact node count of one active graph (one `count(*)` on its graph-db).
    public func nodeCount(of graph: Graph, logger: Logger) async throws -> Int {
        let sessions = try await resolver.resolve(graphID: graph.id)
        let result = try await sessions.graphSession.query("SELECT count(*) FROM \(GraphTable.nodes.qualified(in: sessions.graphSession.schema))", logger: logger)
        return try result.rows.first?.decode(0, as: Int.self) ?? 0
    }
}
