import Foundation
import KTConfig
import KTServerKit
import Logging

// kt-server: the example HTTP server. With no DATABASE_URL in the environment it starts (or
// reuses) the embedded default through `scripts/embedded` — a local PostgreSQL cluster and a
// Qdrant-compatible server under `.kt-data/` — and uses the URLs it prints.

var logger = Logger(label: "kt-server")
logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

func embeddedDefault() throws -> [String: String] {
    var folder = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    var script: URL?
    for _ in 0..<6 {
        let candidate = folder.appendingPathComponent("scripts/embedded")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { script = candidate; break }
        folder.deleteLastPathComponent()
    }
    guard let script else {
        throw KTConfigError(code: .invalidValue, key: "DATABASE_URL",
                            detail: "DATABASE_URL is not set and no scripts/embedded was found above the working folder; set DATABASE_URL or run from the project folder")
    }
    let process = Process()
    process.executableURL = script
    process.arguments = ["start"]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw KTConfigError(code: .invalidValue, key: "DATABASE_URL", detail: "scripts/embedded start failed (exit \(process.terminationStatus))")
    }
    var values: [String: String] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        values[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return values
}

do {
    let environment = ProcessInfo.processInfo.environment
    let overrides = environment["DATABASE_URL"] == nil ? try embeddedDefault() : [:]
    let settings = try await Settings.load(overrides: overrides, logger: logger)
    let configuration = try KTServer.Configuration.fromEnvironment(environment)
    try await KTServer.run(settings: settings, configuration: configuration, logger: logger) { port in
        print("kt-server listening on http://\(configuration.host):\(port)")
    }
} catch {
    FileHandle.standardError.write(Data("kt-server: \(String(reflecting: error))\n".utf8))
    exit(1)
}
