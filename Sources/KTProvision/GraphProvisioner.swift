public import Foundation
public import KTConfig
public import KTDB
import KTGraph
import KTQdrant
public import Logging
import Metrics

/// Creates graphs: a row in the control plane, a schema `graph_<slug>` in the graph-db and the
/// write-db of the chosen database pair, the migrations of both, and the graph's three Qdrant
/// collections on that pair's Qdrant.
///
/// Every step is idempotent and nothing is dropped on failure: the status goes `provisioning` →
/// `active` (the creator becomes admin in the same transaction) or `error`, and
/// ``retry(slug:progress:)`` from `error` converges. Schemas are created and migrated on the
/// pools of a ``GraphSystem`` (within their connection budget), or, for a provisioner built on
/// its own, through one-off connections (`application_name` `kt-provision-<slug>`, never with
/// named prepared statements).
///
/// While it provisions a graph, the provisioner records itself as the graph's owner and renews a
/// heartbeat every third of ``provisioningLease``: a process starting meanwhile
/// (``ServerStartup``) leaves the graph alone, and recovers it only once the heartbeat is older
/// than the lease.
public struct GraphProvisioner: Sendable {
    /// The settings naming the databases and Qdrants.
    public let settings: Settings
    /// Who provisions: recorded on the graph while it is provisioned (one per process).
    public let owner: UUID
    /// How long a heartbeat vouches for the owner being alive. Default 30 s.
    public let provisioningLease: Duration
    let controlPlane: DatabaseSession
    let logger: Logger
    /// The pools and Qdrant clients of the ``GraphSystem`` the provisioner belongs to (it then
    /// stays within their budget); `nil`: one-off connections and dedicated clients.
    let resources: SharedResources?

    /// Creates a provisioner; `controlPlane` is a session on the system graph-db's `public` schema.
    /// It works on one-off connections (never with named statements); the provisioner of a
    /// ``GraphSystem`` uses the system's pools instead.
    public init(settings: Settings, controlPlane: DatabaseSession, owner: UUID = UUID(), provisioningLease: Duration = .seconds(30), logger: Logger) {
        self.init(settings: settings, controlPlane: controlPlane, owner: owner, provisioningLease: provisioningLease, logger: logger, resources: nil)
    }

    init(settings: Settings, controlPlane: DatabaseSession, owner: UUID, provisioningLease: Duration, logger: Logger, resources: SharedResources?) {
        self.settings = settings
        self.controlPlane = controlPlane
        self.owner = owner
        self.provisioningLease = provisioningLease
        self.logger = logger
        self.resources = resources
    }

    /// Runs `body` with connections to the graph-db and the write-db of `targets`: from the
    /// system's pools when there are some, else one-off connections closed afterwards.
    func withConnections<T: Sendable>(
        _ targets: GraphTargets, slug: String, _ body: (_ graphDB: PostgresConnection, _ writeDB: PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let resources else { return try await targets.withConnections(application: "kt-provision-\(slug)", logger: logger, body) }
        let graphPool = try resources.pool(for: targets.graphEndpoint), writePool = try resources.pool(for: targets.writeEndpoint)
        return try await graphPool.withConnection(logger: logger) { graphDB in
            try await writePool.withConnection(logger: logger) { writeDB in try await body(graphDB, writeDB) }
        }
    }

    /// Runs `body` with the Qdrant client of `targets`: the system's (kept open), or a dedicated
    /// one closed afterwards when the provisioner stands alone.
    func withQdrant<T: Sendable>(_ targets: GraphTargets, _ body: (QdrantClient) async throws -> T) async throws -> T {
        if let resources { return try await body(try resources.qdrant(url: targets.qdrantURL)) }
        let qdrant = try targets.qdrantClient(settings: settings, logger: logger)
        defer { if qdrant.isDedicated { qdrant.client.close() } }
        return try await body(qdrant.client)
    }

    /// Creates and provisions a graph.
    ///
    /// - Parameters:
    ///   - databaseKey: the `database_connections` key; `nil` or `default` means the system databases.
    ///   - graphType, byokEnabled, contributeToPublic, usePublicCache: stored as given (defaults as the original).
    ///   - progress: called as each step starts and ends.
    /// - Throws: ``KTProvisionError``: `invalidSlug`, `reservedSlug`, `conflict` (slug taken,
    ///   also when two creations race: exactly one wins), `unknownConnection`, or `stepFailed`
    ///   (the graph then has status `error`).
    @discardableResult
    public func createGraph(
        slug text: String, name: String, description: String? = nil, databaseKey: String? = nil, createdBy: UUID? = nil,
        graphType: String = "v1", byokEnabled: Bool = false, contributeToPublic: Bool = true, usePublicCache: Bool = true,
        progress: @escaping @Sendable (ProvisioningEvent) -> Void = { _ in }
    ) async throws -> Graph {
        let slug = try Self.validatedSlug(text)
        let repository = GraphRepository(controlPlane, logger: logger)
        var connection: DatabaseConnectionRecord?
        if !GraphDatabases.isSystemKey(databaseKey), let key = databaseKey {
            guard let row = try await repository.databaseConnection(configKey: key) else {
                throw KTProvisionError(code: .unknownConnection, message: "no database connection with key '\(key)'")
            }
            do {
                _ = try settings.graphDatabase(forKey: key)  // configured in this process, or fail before any row exists
            } catch {
                throw KTProvisionError(code: .unknownConnection, message: error.detail)
            }
            connection = row
        }
        let graph: Graph
        do {
            graph = try await repository.create(
                slug: slug, name: name, description: description, databaseConnectionID: connection?.id, createdBy: createdBy,
                graphType: graphType, byokEnabled: byokEnabled, contributeToPublic: contributeToPublic, usePublicCache: usePublicCache,
                provisioningOwner: owner)
        } catch let error as KTProvisionError where error.code == .invalidArgument {
            // A name out of bounds is a request the server answers with 422, as a bad slug.
            throw KTProvisionError(code: .invalidSlug, message: error.message)
        }
        return try await provision(graph, creator: createdBy, progress: progress)
    }

    /// Provisions again a graph whose status is `error`, or one left in `provisioning` by a
    /// provisioner that stopped (no heartbeat for ``provisioningLease``: its process died or
    /// lost the control plane). Taking it over is atomic: of two concurrent retries one
    /// provisions, the other fails with `conflict`.
    ///
    /// - Throws: ``KTProvisionError/Code/notFound``, ``KTProvisionError/Code/invalidState`` when
    ///   the graph is active or deleted, ``KTProvisionError/Code/conflict`` while another
    ///   provisioner is at work on it, or what provisioning throws.
    @discardableResult
    public func retry(slug: String, progress: @escaping @Sendable (ProvisioningEvent) -> Void = { _ in }) async throws -> Graph {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard let graph = try await repository.graph(slug: slug), !graph.isDefault else {
            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
        }
        guard graph.status == .error || graph.status == .provisioning else {
            throw KTProvisionError(code: .invalidState, message: "only a graph in status 'error' can be retried (status is '\(graph.status)')")
        }
        guard let claimed = try await repository.claimForRetry(graphID: graph.id, owner: owner, lease: provisioningLease) else {
            let status = try await repository.graph(id: graph.id)?.status ?? graph.status
            if status == .provisioning {
                throw KTProvisionError(code: .conflict, message: "graph '\(slug)' is being provisioned by another process")
            }
            throw KTProvisionError(code: .invalidState, message: "only a graph in status 'error' can be retried (status is '\(status)')")
        }
        return try await provision(claimed, creator: claimed.createdBy, progress: progress)
    }

    /// Deletes a graph. A soft delete sets status `deleted` (the slug stays taken). A hard
    /// delete first moves the graph to `deleted` (so nothing reads or writes it), then drops
    /// both schemas and the three collections, then the row, freeing the slug. When a step
    /// fails, the graph stays `deleted` with the reason recorded (``Graph/provisioningError``)
    /// and the error is thrown: a hard delete run again resumes it.
    ///
    /// - Throws: ``KTProvisionError/Code/notFound``; ``KTProvisionError/Code/invalidState`` for
    ///   the default graph or a schema name that is not the graph's own; ``KTProvisionError/Code/conflict``
    ///   while the graph is provisioning; ``KTProvisionError/Code/stepFailed`` when dropping failed.
    public func deleteGraph(slug: String, hard: Bool) async throws {
        let repository = GraphRepository(controlPlane, logger: logger)
        guard let graph = try await repository.graph(slug: slug) else {
            throw KTProvisionError(code: .notFound, message: "no graph with slug '\(slug)'")
        }
        guard !graph.isDefault else {
            throw KTProvisionError(code: .invalidState, message: "the default graph cannot be deleted")
        }
        let provisioning = KTProvisionError(code: .conflict, message: "graph '\(slug)' is being provisioned; delete it once it is active or in error")
        guard hard else {
            guard graph.status != .provisioning else { throw provisioning }
            guard try await repository.markDeleted(graphID: graph.id) != nil else { throw provisioning }
            return
        }
        // Only ever the graph's own schema: never a name read from a row that is not `graph_<slug>`.
        let expected = try GraphSlug(graph.slug).schemaName
        guard graph.schemaName == expected.rawValue else {
            throw KTProvisionError(code: .invalidState, message: "graph '\(slug)' names schema '\(graph.schemaName)', not '\(expected.rawValue)': nothing was dropped")
        }
        guard try await repository.markDeleted(graphID: graph.id) != nil else { throw provisioning }
        var step = "resolve-targets"
        do {
            let targets = try await targets(for: graph)
            step = "drop-schemas"
            try await withConnections(targets, slug: graph.slug) { graphDB, writeDB in
                for connection in [graphDB, writeDB] {
                    try await connection.execute(simple: "DROP SCHEMA IF EXISTS \(expected.quoted) CASCADE", logger: logger)
                }
            }
            step = "drop-collections"
            try await withQdrant(targets) { qdrant in
                for name in QdrantCollections(graphSlug: graph.slug).all { try await qdrant.deleteCollection(name) }
            }
            step = "delete-row"
            try await repository.deletePermanently(id: graph.id)
        } catch {
            let reason = "hard delete stopped at \(step): \(Self.describe(error))"
            logger.debug("A hard delete did not finish", metadata: ["kt.graph": "\(slug)", "kt.error": "\(reason)"])
            try? await repository.recordDeleteFailure(graphID: graph.id, reason: reason)
            throw KTProvisionError(code: .stepFailed, message: "the hard delete of '\(slug)' did not finish (\(reason)); run it again to resume")
        }
    }

    /// `text` as a graph slug, or ``KTProvisionError/Code/invalidSlug`` (``KTProvisionError/Code/reservedSlug`` for `default`).
    static func validatedSlug(_ text: String) throws(KTProvisionError) -> GraphSlug {
        try GraphSlug(text)
    }

    /// Where a graph's data lives.
    public func targets(for graph: Graph) async throws -> GraphTargets {
        try await GraphTargets.resolve(for: graph, repository: GraphRepository(controlPlane, logger: logger), settings: settings)
    }

    // MARK: Steps

    /// A step's failure, carrying which step failed.
    private struct StepFailure: Error {
        var step: ProvisioningStep
        var error: any Error
    }

    /// Runs one step, reporting its start and end; a failure is tagged with the step.
    private static func step<T: Sendable>(
        _ which: ProvisioningStep, slug: String, progress: @Sendable (ProvisioningEvent) -> Void,
        record: @Sendable (ProvisioningStep) async -> Void = { _ in }, _ body: () async throws -> (T, String)
    ) async throws -> T {
        progress(ProvisioningEvent(slug: slug, step: which, phase: .started, detail: ""))
        let start = ContinuousClock.now
        do {
            let (value, detail) = try await body()
            Timer(label: "kt_provision_step_duration", dimensions: [("step", "\(which)")]).record(duration: ContinuousClock.now - start)
            progress(ProvisioningEvent(slug: slug, step: which, phase: .finished, detail: detail))
            await record(which)
            return value
        } catch let failure as StepFailure {
            throw failure
        } catch {
            throw StepFailure(step: which, error: error)
        }
    }

    /// The steps. The two schemas (different databases) migrate at the same time, and the
    /// Qdrant collections are created while the write-db schema still migrates; every step is
    /// idempotent, so their order does not matter for a retry.
    private func provision(_ graph: Graph, creator: UUID?, progress: @escaping @Sendable (ProvisioningEvent) -> Void) async throws -> Graph {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The heartbeat: renewed until the steps end (the group is cancelled then).
            group.addTask { [controlPlane, owner, logger, provisioningLease] in
                let repository = GraphRepository(controlPlane, logger: logger)
                while !Task.isCancelled {
                    try? await Task.sleep(for: provisioningLease / 3)
                    if Task.isCancelled { return }
                    do {
                        if try await !repository.heartbeat(graphID: graph.id, owner: owner) { return }
                    } catch {
                        logger.debug("A provisioning heartbeat failed", metadata: ["kt.graph": "\(graph.slug)", "kt.error": "\(Self.describe(error))"])
                    }
                }
            }
            defer { group.cancelAll() }
            return try await runSteps(graph, creator: creator, progress: progress)
        }
    }

    private func runSteps(_ graph: Graph, creator: UUID?, progress: @escaping @Sendable (ProvisioningEvent) -> Void) async throws -> Graph {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "kt.graph"] = "\(graph.slug)"
            return logger
        }()
        let slug = graph.slug, settings = self.settings, controlPlane = self.controlPlane
        // Each finished step is recorded on the row, so any process can show the progress.
        let record: @Sendable (ProvisioningStep) async -> Void = { step in
            do {
                try await GraphRepository(controlPlane, logger: logger).recordProvisioningStep(graphID: graph.id, step: step.name)
            } catch {
                logger.debug("Could not record a provisioning step", metadata: ["kt.provision.step": "\(step)", "kt.error": "\(Self.describe(error))"])
            }
        }
        do {
            let targets = try await Self.step(.resolveTargets, slug: slug, progress: progress, record: record) {
                let targets = try await self.targets(for: graph)
                return (targets, "database '\(targets.connectionKey)', schema \(targets.schema)")
            }
            do {
                try await withConnections(targets, slug: slug) { (graphDB, writeDB) -> Void in
                    try await Self.step(.createGraphSchema, slug: slug, progress: progress, record: record) {
                        try await Migrator.createSchemaIfNotExists(targets.schema, on: graphDB, logger: logger)
                        return ((), "\(targets.graphDatabaseURL.host)/\(targets.graphDatabaseURL.database ?? "")")
                    }
                    try await Self.step(.createWriteSchema, slug: slug, progress: progress, record: record) {
                        try await Migrator.createSchemaIfNotExists(targets.schema, on: writeDB, logger: logger)
                        return ((), "\(targets.writeDatabaseURL.host)/\(targets.writeDatabaseURL.database ?? "")")
                    }
                    // The write-db set is the longer one: it migrates while the graph-db set does
                    // and then the collections are created.
                    async let writeMigrated: Void = Self.step(.migrateWriteSchema, slug: slug, progress: progress, record: record) {
                        let report = try await Migrator.migrate([.writeData], schema: targets.schema, on: writeDB, logger: logger)
                        return ((), "\(report.applied.count) migration(s) applied")
                    }
                    try await Self.step(.migrateGraphSchema, slug: slug, progress: progress, record: record) {
                        let report = try await Migrator.migrate([.graphData], schema: targets.schema, on: graphDB, logger: logger)
                        return ((), "\(report.applied.count) migration(s) applied")
                    }
                    try await Self.step(.ensureCollections, slug: slug, progress: progress, record: record) {
                        let collections = QdrantCollections(graphSlug: slug)
                        let created = try await self.withQdrant(targets) { try await $0.ensureGraphCollections(collections, vectorSize: settings.embeddingDimensions) }
                        let global = QdrantClient.sameServer(targets.qdrantURL, settings.qdrant.url)
                        return ((), "\(created.count) collection(s) created on \(global ? "the global" : "the graph's own") Qdrant")
                    }
                    try await writeMigrated
                }
            } catch let failure as StepFailure {
                throw failure
            } catch {
                // Opening the connections belongs to the first schema step.
                throw StepFailure(step: .createGraphSchema, error: error)
            }
            return try await Self.step(.activate, slug: slug, progress: progress) {
                let active = try await controlPlane.withTransaction(logger: logger) { tx in
                    let repository = GraphRepository(tx, logger: logger)
                    // Only provisioning → active, and only for this provisioner: a graph deleted or
                    // taken over meanwhile stays as it is.
                    guard let active = try await repository.activate(graphID: graph.id, owner: owner) else {
                        let status = try await repository.graph(id: graph.id)?.status.rawValue ?? "gone"
                        throw KTProvisionError(code: .invalidState, message: "the graph left provisioning while it was provisioned (status \(status))")
                    }
                    if let creator, try await repository.memberRole(graphID: graph.id, userID: creator) == nil {
                        try await repository.addMember(graphID: graph.id, userID: creator, role: .admin)
                    }
                    return active
                }
                return (active, "status active")
            }
        } catch {
            let failure = error as? StepFailure ?? StepFailure(step: .resolveTargets, error: error)
            let detail = Self.describe(failure.error)
            progress(ProvisioningEvent(slug: slug, step: failure.step, phase: .failed, detail: detail))
            logger.debug("Provisioning failed", metadata: ["kt.provision.step": "\(failure.step)", "kt.error": "\(detail)"])
            _ = try? await GraphRepository(controlPlane, logger: logger).recordProvisioningFailure(graphID: graph.id, reason: "\(failure.step): \(detail)")
            throw KTProvisionError(code: .stepFailed, message: "provisioning of '\(slug)' failed at \(failure.step): \(detail)", step: failure.step)
        }
    }

    /// A detail of an error that holds no secret (the modules' errors never do).
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as KTDBError: error.message
        case let error as KTQdrantError: error.message
        case let error as KTProvisionError: error.message
        default: String(describing: error)
        }
    }
}
