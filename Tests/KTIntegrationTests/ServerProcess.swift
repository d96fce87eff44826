import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `kt-server` run as a process of its own (the executable built next to this test bundle),
/// listening on a free port; its output goes to a file so that no pipe can fill up.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let log: URL
    let api: APIClient
    private let session: URLSession

    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kt-server")
    }

    /// Why a server did not start, with all it printed.
    struct StartError: Error, CustomStringConvertible {
        var output: String
        var description: String { "kt-server did not start: \(output)" }
    }

    /// Starts the server with `environment` and waits until `/health/live` answers 200 (at most
    /// 60 s). The port is free when chosen, but another process may take it before the server
    /// binds it (an outgoing connection's local port, say): then the server starts again on
    /// another one.
    init(environment: [String: String]) async throws {
        let configuration = URLSessionConfiguration.default
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: configuration)
        var attempt = 1
        while true {
            let port = try QdrantLocalServer.freePort()
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("kt-server-\(UUID().uuidString).log")
            let api = APIClient(base: "http://127.0.0.1:\(port)", session: session)
            let process = try Self.launch(environment, port: port, log: log)
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, process.isRunning {
                if let reply = try? await api.call("GET", "/health/live"), reply.status == 200 {
                    (self.process, self.port, self.log, self.api) = (process, port, log, api)
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            Self.stop(process, log: log)
            guard output.contains("Address already in use"), attempt < 5 else {
                session.invalidateAndCancel()
                throw StartError(output: output)
            }
            attempt += 1
        }
    }

    private static func launch(_ environment: [String: String], port: Int, log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = executable
        var environment = environment
        environment["KT_HOST"] = "127.0.0.1"
        environment["KT_PORT"] = "\(port)"
        environment["LOG_LEVEL"] = "error"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    private static func stop(_ process: Process, log: URL) {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }

    /// What the server printed so far.
    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM and waits for the process to end.
    func stop() {
        Self.stop(process, log: log)
        session.invalidateAndCancel()
    }
}
