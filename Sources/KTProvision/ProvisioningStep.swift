/// One step of provisioning a graph, reported as it starts and as it ends.
public struct ProvisioningStep: Sendable, Hashable, CustomStringConvertible {
    /// The step's name.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// Pick the graph-db, write-db and Qdrant of the graph.
    public static let resolveTargets = ProvisioningStep("resolve-targets")
    /// `CREATE SCHEMA IF NOT EXISTS` in the graph-db.
    public static let createGraphSchema = ProvisioningStep("create-graph-schema")
    /// `CREATE SCHEMA IF NOT EXISTS` in the write-db.
    public static let createWriteSchema = ProvisioningStep("create-write-schema")
    /// Migrate the graph-db schema.
    public static let migrateGraphSchema = ProvisioningStep("migrate-graph-schema")
    /// Migrate the write-db schema.
    public static let migrateWriteSchema = ProvisioningStep("migrate-write-schema")
    /// Ensure the three Qdrant collections.
    public static let ensureCollections = ProvisioningStep("ensure-collections")
    /// Mark the graph active (and add its creator as admin).
    public static let activate = ProvisioningStep("activate")

    /// The step's name.
    public var description: String { name }
}

/// A progress event of ``GraphProvisioner``.
public struct ProvisioningEvent: Sendable, Hashable {
    /// Whether a step started, finished or failed.
    public enum Phase: Sendable, Hashable { case started, finished, failed }
    /// The graph's slug.
    public var slug: String
    /// The step.
    public var step: ProvisioningStep
    /// The phase.
    public var phase: Phase
    /// What the step did (for example which database or how many migrations); never a secret.
    public var detail: String
}
