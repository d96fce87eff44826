import Foundation
import HTTPTypes
import KTConfig
import KTDB
import KTProvision
import Logging

/// Graph operations shared by the JSON API and the web console: the same checks and the same
/// errors (`APIError`) whichever front end asks.
extension ServerState {
    /// Creates and provisions a graph (superuser). `body` must be validated.
    ///
    /// - Throws: 400 for `default` or an unknown database key, 409 for a taken slug; when a
    ///   provisioning step fails, ``ProvisioningFailed`` (the graph row stays, in `error`).
    func createGraph(_ body: CreateGraphRequest, creator: UUID, logger: Logger) async throws -> Graph {
        guard body.slug != GraphDatabases.defaultKey else { throw APIError(.badRequest, "Slug 'default' is reserved") }
        let repository = graphs(logger)
        if try await repository.graph(slug: body.slug) != nil {
            throw APIError(.conflict, "Graph '\(body.slug)' already exists")
        }
        if let key = body.databaseConnectionConfigKey, !GraphDatabases.isSystemKey(key), try await repository.databaseConnection(configKey: key) == nil {
            throw APIError(.badRequest, "Database connection '\(key)' not found")
        }
        do {
            let graph = try await provisioner.createGraph(
                slug: body.slug, name: body.name, description: body.description, databaseKey: body.databaseConnectionConfigKey,
                createdBy: creator, graphType: body.graphType ?? "v1", byokEnabled: body.byokEnabled ?? false,
                contributeToPublic: body.contributeToPublic ?? true, usePublicCache: body.usePublicCache ?? true)
            await system.invalidate(graphID: graph.id)
            return graph
        } catch let error as KTProvisionError where error.code == .stepFailed {
            logger.debug("provisioning failed", metadata: ["kt.graph": "\(body.slug)", "kt.error": "\(error.debugDescription)"])
            throw ProvisioningFailed(slug: body.slug)
        }
    }

    /// Deletes a graph (superuser): soft, or with `hard` its schemas, collections and row (a
    /// hard delete of a `deleted` graph resumes one that did not finish).
    ///
    /// - Throws: 404, 400 for the default graph, 409 while it is provisioning, 503 when a hard
    ///   delete stopped part way (the graph stays deleted; running it again resumes).
    func deleteGraph(slug: String, hard: Bool, logger: Logger) async throws {
        guard let graph = try await graphs(logger).graph(slug: slug), hard || graph.status != .deleted else { throw APIError.graphNotFound }
        await system.invalidate(graphID: graph.id)
        do {
            try await provisioner.deleteGraph(slug: slug, hard: hard)
        } catch let error as KTProvisionError where error.code == .stepFailed {
            await system.invalidate(graphID: graph.id)
            logger.debug("hard delete stopped", metadata: ["kt.graph": "\(slug)", "kt.error": "\(error.message)"])
            throw APIError(
                .serviceUnavailable, "The hard delete of '\(slug)' did not finish; the graph stays deleted. Run the hard delete again to resume.",
                headers: [.retryAfter: "5"])
        }
        await system.invalidate(graphID: graph.id)  // a request may have resolved it meanwhile
    }

    /// Provisions a graph in `error` again (superuser).
    ///
    /// - Throws: 404, 400 when it is neither in `error` nor abandoned in `provisioning`, 409 while
    ///   another process provisions it, ``ProvisioningFailed`` when a step fails again.
    func retryGraph(slug: String, logger: Logger) async throws -> Graph {
        guard let graph = try await graphs(logger).graph(slug: slug), graph.status != .deleted, !graph.isDefault else {
            throw APIError.graphNotFound
        }
        do {
            // The provisioner decides what may be retried (`invalidState`: 400, `conflict`: 409).
            let retried = try await provisioner.retry(slug: slug)
            await system.invalidate(graphID: graph.id)
            return retried
        } catch let error as KTProvisionError where error.code == .stepFailed {
            logger.debug("provisioning retry failed", metadata: ["kt.graph": "\(slug)", "kt.error": "\(error.debugDescription)"])
            await system.invalidate(graphID: graph.id)
            throw ProvisioningFailed(slug: slug)
        }
    }
}

extension ServerState {
    /// Moves a graph to the pair `key` (the provisioner checks the key, the pair and the status:
    /// 400, 409); a move that fails is rolled back and answers 500 with the phase it stopped at.
    func moveGraph(slug: String, to key: String, logger: Logger) async throws -> Graph {
        guard let graph = try await graphs(logger).graph(slug: slug), graph.status != .deleted else { throw APIError.graphNotFound }
        do {
            let moved = try await provisioner.moveGraph(slug: slug, toDatabase: key)
            await system.invalidate(graphID: graph.id)
            return moved
        } catch let error as KTProvisionError where error.code == .stepFailed {
            logger.debug("move failed", metadata: ["kt.graph": "\(slug)", "kt.error": "\(error.debugDescription)"])
            await system.invalidate(graphID: graph.id)
            throw APIError(.internalServerError, "The move failed and was rolled back; the graph stays on its database")
        }
    }
}

extension ServerState {
    /// Records a database pair under `name` (superuser): `configKey` must be configured in this
    /// process and may not be `default`.
    func createDatabaseConnection(name: String, configKey: String, logger: Logger) async throws -> DatabaseConnectionRecord {
        guard !GraphDatabases.isSystemKey(configKey) else {
            throw APIError(.badRequest, "config_key '\(GraphDatabases.defaultKey)' is reserved for the system database")
        }
        do {
            _ = try settings.graphDatabase(forKey: configKey)
        } catch {
            throw APIError(
                .badRequest, "config_key '\(configKey)' is not configured in this process (set EXTRA_DB_\(configKey.uppercased().replacingOccurrences(of: "-", with: "_"))_* or GRAPH_DATABASES)")
        }
        return try await graphs(logger).createDatabaseConnection(name: name, configKey: configKey)
    }
}

/// A provisioning step failed; the graph is in `error` with the reason recorded on it.
struct ProvisioningFailed: Error {
    var slug: String
}
