import Foundation
import KTConfig
import KTDB
import Logging
import Testing

/// Schemathesis (PyPI) against kt-server's OpenAPI document, with every check and phase, as a
/// superuser and as a plain user: every generated request gets a response whose status, body
/// and content type the document allows, requests valid by the document are accepted (state
/// the document cannot express is listed in `Tests/schemathesis/schemathesis.toml`), and
/// invalid ones are rejected.
@Suite(.enabled(if: TestEnvironment.isEnabled), .serialized)
struct SchemathesisTests {
    let logger = TestEnvironment.logger

    static var configuration: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schemathesis/schemathesis.toml")
    }

    @Test("schemathesis finds no failure, as a superuser and as a plain user (issue 17, item 11)", arguments: [true, false])
    func schemathesis(superuser: Bool) async throws {
        let python = try #require(TestEnvironment.variables["KT_TEST_BROWSER_PYTHON"], "scripts/test-env installs the test tools")
        let binary = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("schemathesis")
        try await TestWorld.with(logger: logger) { world in
            // Every pair answers (readiness would otherwise rightly be 503, a server error to schemathesis).
            try await world.controlPlane.query("DELETE FROM database_connections WHERE config_key = 'broken'", logger: logger)
            let token = try await world.token(email: superuser ? "root@example.org" : "plain@example.org", superuser: superuser, logger: logger)
            let server = try await ServerProcess(environment: try MigrateAllTests.environment(world))
            defer { server.stop() }
            var environment = ProcessInfo.processInfo.environment
            environment["NO_COLOR"] = "1"
            // Every check is on by default (the CLI's `--checks all` would outrank the file's
            // per-operation settings). One worker: CPython 3.11 before 3.11.9 can fail `ast.parse` when threads parse at once
            // (gh-106905), which hypothesis does while describing strategies. A fixed seed keeps runs comparable.
            let (status, output) = try await TestEnvironment.runProcess(
                binary,
                [
                    "--config-file", Self.configuration.path, "run", "http://127.0.0.1:\(server.port)/openapi.json",
                    "--workers", "1", "--max-examples", "30", "--seed", "20261126", "-H", "Authorization: Bearer \(token)",
                ], environment: environment, directory: FileManager.default.temporaryDirectory)
            #expect(status == 0, "\(output.suffix(6000))")
        }
    }
}
