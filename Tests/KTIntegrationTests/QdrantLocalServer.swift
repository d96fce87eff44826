import Foundation
import KTConfig
import KTQdrant
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A Qdrant-compatible local server started by a test (for the API-key and restart tests);
/// the two shared servers come from `scripts/test-env`.
final class QdrantLocalServer: @unchecked Sendable {
    let port: Int
    let folder: String
    let apiKey: String?
    private var process: Process?

    var url: String { "http://127.0.0.1:\(port)" }

    init(apiKey: String? = nil) throws {
        self.port = try Self.freePort()
        self.folder = FileManager.default.temporaryDirectory.appendingPathComponent("kt-qdrant-\(UUID().uuidString)").path
        self.apiKey = apiKey
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts the server and waits until it answers, for up to `timeout`: a loaded machine (the
    /// full suite on two cores) can take many seconds to start Python and `qdrant-client`. A server
    /// that exits instead fails at once, with the end of its log.
    func start(timeout: Duration = .seconds(120)) async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let python = environment["KT_TEST_QDRANT_PYTHON"], let script = environment["KT_TEST_QDRANT_SERVER"] else {
            throw KTQdrantError(code: .invalidConfiguration, message: "KT_TEST_QDRANT_PYTHON / KT_TEST_QDRANT_SERVER not set; run scripts/test-env start")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        var arguments = [script, "--host", "127.0.0.1", "--port", "\(port)", "--path", folder]
        if let openapi = environment["KT_TEST_QDRANT_OPENAPI"] { arguments += ["--openapi", openapi] }
        if let apiKey { arguments += ["--api-key", apiKey] }
        process.arguments = arguments
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let logPath = folder + "/server.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close() }
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if Self.accepts(port: port) { return }
            guard process.isRunning else {
                self.process = nil
                let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: " | ") ?? ""
                throw KTQdrantError(code: .transport, message: "the local Qdrant server on port \(port) exited (\(process.terminationStatus)): \(tail)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw KTQdrantError(code: .transport, message: "the local Qdrant server did not start on port \(port) within \(timeout)")
    }

    /// Stops the server (its data folder stays, so a restart keeps the collections).
    func stop() {
        guard let process else { return }
        // SIGKILL: a child of a Swift process may inherit a signal mask that blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
