public import KTDB

/// A table of the SDK's catalog: one of a graph's tables in write-db (``WriteTable``) or in
/// graph-db (``GraphTable``). Every table name is written once, in these two catalogs; the
/// migrations, the engines and the sync take names from them.
public protocol CatalogTable: Sendable, Hashable, CustomStringConvertible {
    /// The unqualified name, as the migrations create it.
    var name: String { get }
    /// Every table of the catalog, in the order the migrations create them.
    static var all: [Self] { get }
}

extension CatalogTable {
    /// The unqualified name.
    public var description: String { name }

    /// The table in `schema`, for SQL that does not depend on `search_path`.
    public func qualified(in schema: SchemaName) -> TableName { TableName(catalogued: name, in: schema) }

    /// The table of the catalog named `name`, or `nil`.
    public static func named(_ name: String) -> Self? { all.first { $0.name == name } }
}

/// A table of a graph's schema in write-db.
public struct WriteTable: CatalogTable {
    /// The unqualified name.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// Nodes, keyed by the slug of their concept.
    public static let nodes = WriteTable("write_nodes")
    /// Edges, keyed by their relationship and ordered node keys.
    public static let edges = WriteTable("write_edges")
    /// Dimensions (a model's view of a node).
    public static let dimensions = WriteTable("write_dimensions")
    /// Facts.
    public static let facts = WriteTable("write_facts")
    /// Where facts came from.
    public static let factSources = WriteTable("write_fact_sources")
    /// Raw sources (documents, pages).
    public static let rawSources = WriteTable("write_raw_sources")
    /// Chunks of raw sources that must not become facts.
    public static let prohibitedChunks = WriteTable("write_prohibited_chunks")
    /// Convergence reports, one per node.
    public static let convergenceReports = WriteTable("write_convergence_reports")
    /// Divergent claims of convergence reports.
    public static let divergentClaims = WriteTable("write_divergent_claims")
    /// Access and update counters, one row per node.
    public static let nodeCounters = WriteTable("write_node_counters")
    /// Facts rejected for a node.
    public static let nodeFactRejections = WriteTable("write_node_fact_rejections")
    /// Saved versions of nodes.
    public static let nodeVersions = WriteTable("write_node_versions")
    /// Seeds (candidate nodes).
    public static let seeds = WriteTable("write_seeds")
    /// Facts of seeds.
    public static let seedFacts = WriteTable("write_seed_facts")
    /// Candidate edges.
    public static let edgeCandidates = WriteTable("write_edge_candidates")
    /// Merged seeds.
    public static let seedMerges = WriteTable("write_seed_merges")
    /// Routes of seeds.
    public static let seedRoutes = WriteTable("write_seed_routes")
    /// The sync's watermark per table.
    public static let syncWatermarks = WriteTable("sync_watermarks")
    /// The sync's queue of deferred and failed rows.
    public static let syncFailures = WriteTable("sync_failures")
    /// Deletions recorded for the sync.
    public static let tombstones = WriteTable("write_tombstones")
    /// LLM usage records.
    public static let llmUsage = WriteTable("write_llm_usage")

    /// Every write-db table.
    public static let all: [WriteTable] = [
        .nodes, .edges, .dimensions, .facts, .factSources, .rawSources, .prohibitedChunks, .convergenceReports, .divergentClaims,
        .nodeCounters, .nodeFactRejections, .nodeVersions, .seeds, .seedFacts, .edgeCandidates, .seedMerges, .seedRoutes,
        .syncWatermarks, .syncFailures, .tombstones, .llmUsage,
    ]
}

/// A table of a graph's schema in graph-db.
public struct GraphTable: CatalogTable {
    /// The unqualified name.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// Nodes.
    public static let nodes = GraphTable("nodes")
    /// Access and update counters of nodes.
    public static let nodeCounters = GraphTable("node_counters")
    /// Edges.
    public static let edges = GraphTable("edges")
    /// Dimensions.
    public static let dimensions = GraphTable("dimensions")
    /// Convergence reports.
    public static let convergenceReports = GraphTable("convergence_reports")
    /// Divergent claims of convergence reports.
    public static let divergentClaims = GraphTable("divergent_claims")
    /// Facts.
    public static let facts = GraphTable("facts")
    /// Raw sources.
    public static let rawSources = GraphTable("raw_sources")
    /// Where facts came from.
    public static let factSources = GraphTable("fact_sources")
    /// Chunks of raw sources that must not become facts.
    public static let prohibitedChunks = GraphTable("prohibited_chunks")
    /// Facts linked to nodes.
    public static let nodeFacts = GraphTable("node_facts")
    /// Facts linked to dimensions.
    public static let dimensionFacts = GraphTable("dimension_facts")
    /// Facts linked to edges.
    public static let edgeFacts = GraphTable("edge_facts")
    /// Facts rejected for a node.
    public static let nodeFactRejections = GraphTable("node_fact_rejections")
    /// Saved versions of nodes.
    public static let nodeVersions = GraphTable("node_versions")
    /// LLM usage records.
    public static let llmUsage = GraphTable("llm_usage")

    /// Every graph-db table.
    public static let all: [GraphTable] = [
        .nodes, .nodeCounters, .edges, .dimensions, .convergenceReports, .divergentClaims, .facts, .rawSources, .factSources,
        .prohibitedChunks, .nodeFacts, .dimensionFacts, .edgeFacts, .nodeFactRejections, .nodeVersions, .llmUsage,
    ]
}

/// A graph's tables in one database, qualified with its schema: the one way the engines and
/// the sync address a graph (no `search_path` setting, so every statement reaches the graph's
/// own table on any pooled connection, through PgBouncer in transaction mode too).
///
/// `tables.nodes` is ``CatalogTable/qualified(in:)`` of the catalog's `nodes`.
@dynamicMemberLookup
public struct SchemaTables<Table: CatalogTable>: Sendable, Hashable {
    /// The graph's schema.
    public let schema: SchemaName

    /// The tables of `schema`.
    public init(_ schema: SchemaName) { self.schema = schema }

    /// A table of the catalog, qualified.
    public subscript(dynamicMember table: KeyPath<Table.Type, Table>) -> TableName { Table.self[keyPath: table].qualified(in: schema) }

    /// A table of the catalog, qualified.
    public subscript(_ table: Table) -> TableName { table.qualified(in: schema) }
}

/// A graph's write-db tables.
public typealias WriteTables = SchemaTables<WriteTable>
/// A graph's graph-db tables.
public typealias GraphTables = SchemaTables<GraphTable>
