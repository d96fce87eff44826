import Foundation
import KTConfig
import KTServerKit
import Logging

// kt-server: the example HTTP server. With no DATABASE_URL in the environment it starts (or
// reuses) the embedded default through `scripts/embedded` — a local PostgreSQL cluster and a
// Qdrant-compatible server under `.kt-data/` — and uses the URLs it prints.

var logger = Logger(label: "kt-server")
logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice

func embeddedDefault() async throws -> [String: String] {
    var folder = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    var script: URL?
    for _ in 0..<6 {
        let candidate = folder.appendingPathComponent("scripts/embedded")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { script = candidate; break }
        folder.deleteLastPathComponent()
    }
    guard let script else {
        throw KTConfigError(
            code: .invalidValue, key: "DATABASE_URL",
            detail: "DATABASE_URL is not set and no scripts/embedded was found above the working folder; set DATABASE_URL or run from the project folder")
    }
    // popen/pclose on a thread of its own: Foundation's Process did not reap the child here
    // (its termination handler never ran), and the wait must not block an async context.
    let command = "'" + script.path.replacingOccurrences(of: "'", with: "'\\''") + "' start"
    let (status, text): (Int32, String) = await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            guard let pipe = popen(command, "r") else { return continuation.resume(returning: (-1, "")) }
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&buffer, 1, buffer.count, pipe)
                if count <= 0 { break }
                data.append(contentsOf: buffer[0..<count])
            }
            continuation.resume(returning: (pclose(pipe), String(decoding: data, as: UTF8.self)))
        }
    }
    guard status == 0 else {
        throw KTConfigError(code: .invalidValue, key: "DATABASE_URL", detail: "scripts/embedded start failed (status \(status))")
    }
    var values: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        values[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return values
}

do {
    let environment = ProcessInfo.processInfo.environment
    let overrides = environment["DATABASE_URL"] == nil ? try await embeddedDefault() : [:]
    let settings = try await Settings.load(overrides: overrides, logger: logger)
    let configuration = try KTServer.Configuration.fromEnvironment(environment)
    try await KTServer.run(settings: settings, configuration: configuration, logger: logger) { port in
        FileHandle.standardOutput.write(Data("kt-server listening on http://\(configuration.host):\(port)\nconsole: http://\(configuration.host):\(port)/ (sign in with an API token)\n".utf8))
    }
} catch {
    FileHandle.standardError.write(Data("kt-server: \(String(reflecting: error))\n".utf8))
    exit(1)
}
