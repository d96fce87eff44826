import Foundation
import HTTPTypes
import KTDB
import KTProvision
import Logging
import ServiceLifecycle
import Synchronization

/// Bearer-token authentication that reads the control plane at most once per token per
/// ``cacheLifetime`` and never writes on the request path:
/// - verified tokens are cached by their SHA-256 digest (a revoked token may keep working for
///   up to ``cacheLifetime``);
/// - token use is collected and written by ``TokenUseRecorder`` (at most once a minute per token);
/// - verifications of tokens not in the cache (the work an unauthenticated flood causes) run at
///   most ``maximumConcurrentVerifications`` at a time; beyond that a request gets 429 with
///   `Retry-After`, and the control-plane pool stays free for everyone else.
final class TokenAuthenticator: Sendable {
    static let cacheLifetime: Duration = .seconds(30)
    static let maximumCachedTokens = 10_000
    static let maximumConcurrentVerifications = 16

    private struct Cached {
        var auth: AuthenticatedUser
        var expires: ContinuousClock.Instant
    }

    private let cache = Mutex<[String: Cached]>([:])
    private let used = Mutex<Set<UUID>>([])
    private let verifying = Atomic<Int>(0)
    private let controlPlane: DatabaseSession

    init(controlPlane: DatabaseSession) {
        self.controlPlane = controlPlane
    }

    /// The user of `token`, or `nil` for an unknown one.
    ///
    /// - Throws: 429 ``APIError`` when too many unknown tokens are being verified at once.
    func authenticate(token: String, logger: Logger) async throws -> AuthenticatedUser? {
        guard token.hasPrefix("kt_"), token.count < 200 else { return nil }
        let key = UserRepository.tokenDigest(token)
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[key] }), hit.expires > now {
            used.withLock { _ = $0.insert(hit.auth.tokenID) }
            return hit.auth
        }
        guard verifying.add(1, ordering: .acquiringAndReleasing).newValue <= Self.maximumConcurrentVerifications else {
            verifying.subtract(1, ordering: .acquiringAndReleasing)
            throw APIError(.tooManyRequests, "Too many authentication attempts at once; retry shortly", headers: [.retryAfter: "1"])
        }
        defer { verifying.subtract(1, ordering: .acquiringAndReleasing) }
        guard let auth = try await UserRepository(controlPlane, logger: logger).verify(token: token) else { return nil }
        cache.withLock { cache in
            if cache.count >= Self.maximumCachedTokens {
                cache = cache.filter { $0.value.expires > now }
                if cache.count >= Self.maximumCachedTokens { cache.removeAll(keepingCapacity: true) }
            }
            cache[key] = Cached(auth: auth, expires: now + Self.cacheLifetime)
        }
        used.withLock { _ = $0.insert(auth.tokenID) }
        return auth
    }

    /// The tokens used since the last call.
    func takeUsed() -> [UUID] {
        used.withLock { used in
            defer { used.removeAll() }
            return Array(used)
        }
    }
}

/// Writes the tokens' `last_used_at` off the request path: every `interval` (and at shutdown),
/// one statement for every token used meanwhile.
struct TokenUseRecorder: Service {
    let authenticator: TokenAuthenticator
    let controlPlane: DatabaseSession
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await flush()
            if Task.isCancelled { return }
        }
    }

    func flush() async {
        let ids = authenticator.takeUsed()
        guard !ids.isEmpty else { return }
        do {
            try await UserRepository(controlPlane, logger: logger).recordTokenUse(ids, at: Date())
        } catch {
            logger.debug("could not record token use", metadata: ["kt.error": "\(error)"])
        }
    }
}

/// Readiness from a state refreshed in the background (every `interval`), so that health
/// checks cost no query each: `GET /health/ready` reads the last result (the first request
/// before any result waits for one check).
final class ReadinessMonitor: Service, Sendable {
    private let system: GraphSystem
    private let interval: Duration
    private let logger: Logger
    private let last = Mutex<[String]?>(nil)

    init(system: GraphSystem, interval: Duration, logger: Logger) {
        self.system = system
        self.interval = interval
        self.logger = logger
    }

    /// What is down, as of the last check.
    func unavailable() async -> [String] {
        if let known = last.withLock({ $0 }) { return known }
        return await refresh()
    }

    @discardableResult
    private func refresh() async -> [String] {
        let down = await system.unavailableComponents(logger: logger)
        last.withLock { $0 = down }
        return down
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
