import ArgumentParser
import Foundation
import KTDB
import KTGraph
import KTProvision

extension GraphsCommand {
    /// `kt graphs status [--json] [SLUG]`: where each graph lives, its schemas against head, its
    /// sync lag and dead letters.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Database, status, schema versions against head, sync lag and dead letters of each graph (or one).")
        @Argument(help: "One graph (default: every graph that is not deleted).") var slug: String?
        @Flag(help: "Print JSON.") var json = false
        @Flag(name: .shortAndLong, help: "Log debug output.") var verbose = false

        func run() async throws {
            await CLIEnvironment.run(verbose: verbose) { environment in
                let reports = try await environment.withSystem { system in
                    let repository = GraphRepository(system.controlPlane, logger: environment.logger)
                    let graphs: [Graph]
                    if let slug {
                        guard let graph = try await repository.graph(slug: slug) else {
                            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
                        }
                        graphs = [graph]
                    } else {
                        graphs = try await repository.listAccessible(userID: nil, isSuperuser: true)
                    }
                    return await system.status(of: graphs, logger: environment.logger)
                }
                if json {
                    printJSON(slug == nil ? reports.map(Self.json) as Any : Self.json(reports[0]))
                    return
                }
                print(["SLUG", "STATUS", "DATABASE", "GRAPH-DB", "WRITE-DB", "SYNC LAG", "DEAD LETTERS"].joined(separator: "\t"))
                for report in reports {
                    func version(_ schema: SchemaVersion?) -> String { schema.map { "\($0.applied)/\($0.head)" } ?? "?" }
                    print(
                        [
                            report.graph.slug, report.graph.status.rawValue, report.database, version(report.graphSchema), version(report.writeSchema),
                            report.sync.map { String(format: "%.1fs", $0.lag()) } ?? "?", report.sync.map { "\($0.deadLetters)" } ?? "?",
                        ].joined(separator: "\t"))
                    for problem in report.problems { print("  ! \(problem)") }
                }
            }
        }

        static func json(_ report: GraphStatusReport) -> [String: Any] {
            func schema(_ version: SchemaVersion?) -> Any {
                version.map { ["set": $0.set, "version": $0.applied, "head": $0.head, "at_head": $0.atHead] as [String: Any] } ?? NSNull()
            }
            let sync: Any =
                report.sync.map {
                    [
                        "lag_seconds": $0.lag(), "pending": $0.pending, "dead_letters": $0.deadLetters,
                        "oldest_unsynced_change": $0.oldestUnsyncedChange.map { ISO8601DateFormatter().string(from: $0) } ?? NSNull(),
                    ] as [String: Any]
                } ?? NSNull()
            return [
                "slug": report.graph.slug, "status": report.graph.status.rawValue, "database": report.database,
                "graph_schema": schema(report.graphSchema), "write_schema": schema(report.writeSchema), "sync": sync,
                "schema_error": report.graph.schemaError ?? NSNull(), "problems": report.problems,
            ]
        }
    }
}
