import Foundation
import KTDB

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `kt-server` run as a process of its own (the executable built next to this test bundle),
/// listening on a free port; its output goes to a file so that no pipe can fill up.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let log: URL
    let api: APIClient
    private let session: URLSession

    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kt-server")
    }

    /// Starts the server with `environment` and waits until `/health/live` answers 200 (at most 60 s).
    init(environment: [String: String]) async throws {
        port = try QdrantLocalServer.freePort()
        log = FileManager.default.temporaryDirectory.appendingPathComponent("kt-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = Self.executable
        var environment = environment
        environment["KT_HOST"] = "127.0.0.1"
        environment["KT_PORT"] = "\(port)"
        environment["LOG_LEVEL"] = "error"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        let configuration = URLSessionConfiguration.default
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: configuration)
        api = APIClient(base: "http://127.0.0.1:\(port)", session: session)
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if !process.isRunning { break }
            if let reply = try? await api.call("GET", "/health/live"), reply.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        stop()
        throw KTDBError(code: .connectionFailed, message: "kt-server did not start: \(output)")
    }

    /// What the server printed so far.
    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM and waits for the process to end.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        session.invalidateAndCancel()
        try? FileManager.default.removeItem(at: log)
    }
}
