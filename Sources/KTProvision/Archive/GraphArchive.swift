import Crypto
public import Foundation

/// What a graph archive holds besides its data: written last, read (and checked) first.
public struct GraphArchiveManifest: Codable, Sendable, Equatable {
    /// The graph's settings as exported.
    public struct GraphInfo: Codable, Sendable, Equatable {
        public var slug: String, name: String, description: String?
        public var graphType: String, byokEnabled: Bool, contributeToPublic: Bool, usePublicCache: Bool
    }

    /// One part: a table's rows (PostgreSQL binary COPY format) or a collection's points
    /// (JSON lines: id, vector, payload).
    public struct Part: Codable, Sendable, Equatable {
        /// `graph`, `write` or `qdrant`.
        public var store: String
        /// The table, or the collection's kind (`facts`, `nodes`, `seeds`).
        public var name: String
        /// The table's columns, in the order of the data.
        public var columns: [String]?
        public var rows: Int
        public var bytes: Int
        /// SHA-256 of the part's bytes, hex.
        public var sha256: String

        /// The part's key in the file (`store/name`).
        public var key: String { "\(store)/\(name)" }
    }

    /// The archive format's version.
    public var format: Int
    public var createdAt: Date
    public var graph: GraphInfo
    /// The migrations applied to each schema (`graph-db`, `write-db`): set name to versions.
    public var schemaVersions: [String: [Int]]
    public var parts: [Part]
}

/// The file layout of a graph archive: a magic line, then records, each a header line and its
/// bytes — `P <store/name> <count>` (a slice of a part), `M <count>` (the manifest, JSON), `E`
/// (the end). A part may span many records; its checksum covers their bytes in order.
enum GraphArchiveFile {
    static let magic = Data("KTGRAPH 1\n".utf8)
    static let currentFormat = 1

    /// Writes records to a file, hashing each part as it goes.
    final class Writer {
        private let handle: FileHandle
        private var hashes: [String: SHA256] = [:]
        private var sizes: [String: Int] = [:]

        init(creating url: URL) throws {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw KTProvisionError(code: .invalidArchive, message: "cannot create \(url.path)")
            }
            handle = try FileHandle(forWritingTo: url)
            try handle.write(contentsOf: GraphArchiveFile.magic)
        }

        func write(part key: String, _ bytes: [UInt8]) throws {
            guard !bytes.isEmpty else { return }
            try handle.write(contentsOf: Data("P \(key) \(bytes.count)\n".utf8))
            try handle.write(contentsOf: bytes)
            hashes[key, default: SHA256()].update(data: bytes)
            sizes[key, default: 0] += bytes.count
        }

        /// The part's size and checksum so far.
        func summary(of key: String) -> (bytes: Int, sha256: String) {
            let digest = (hashes[key] ?? SHA256()).finalize()
            return (sizes[key] ?? 0, digest.map { String(format: "%02x", $0) }.joined())
        }

        func finish(_ manifest: GraphArchiveManifest) throws {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            let json = try encoder.encode(manifest)
            try handle.write(contentsOf: Data("M \(json.count)\n".utf8))
            try handle.write(contentsOf: json)
            try handle.write(contentsOf: Data("\nE\n".utf8))
            try handle.synchronize()
            try handle.close()
        }
    }

    /// Reads records in order.
    final class Reader {
        private let handle: FileHandle
        private var buffer = Data()
        private var atEnd = false

        enum Record {
            case part(key: String, bytes: [UInt8])
            case manifest(GraphArchiveManifest)
            case end
        }

        init(url: URL) throws {
            do {
                handle = try FileHandle(forReadingFrom: url)
            } catch {
                throw KTProvisionError(code: .invalidArchive, message: "cannot open \(url.path)")
            }
            guard try read(count: GraphArchiveFile.magic.count) == GraphArchiveFile.magic else {
                throw Self.damaged("it does not start like a graph archive")
            }
        }

        deinit { try? handle.close() }

        static func damaged(_ why: String) -> KTProvisionError {
            KTProvisionError(code: .invalidArchive, message: "the archive is damaged or not a graph archive: \(why)")
        }

        private func fill(_ count: Int) throws {
            while buffer.count < count, !atEnd {
                let chunk = try handle.read(upToCount: max(1 << 20, count - buffer.count)) ?? Data()
                if chunk.isEmpty { atEnd = true } else { buffer.append(chunk) }
            }
        }

        private func read(count: Int) throws -> Data {
            try fill(count)
            guard buffer.count >= count else { throw Self.damaged("it ends early") }
            let data = buffer.prefix(count)
            buffer.removeFirst(count)
            return Data(data)
        }

        private func line() throws -> String {
            var searched = 0
            while true {
                if let newline = buffer[(buffer.startIndex + searched)...].firstIndex(of: UInt8(ascii: "\n")) {
                    let text = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer.removeFirst(newline - buffer.startIndex + 1)
                    return text
                }
                searched = buffer.count
                guard searched < 4096 else { throw Self.damaged("a record header is too long") }
                let before = buffer.count
                try fill(before + 1)
                guard buffer.count > before else { throw Self.damaged("it ends early") }
            }
        }

        func next() throws -> Record {
            let header = try line().split(separator: " ", omittingEmptySubsequences: false)
            switch header.first {
            case "P" where header.count == 3:
                guard let count = Int(header[2]), count > 0, count <= 64 << 20 else { throw Self.damaged("a bad record length") }
                return .part(key: String(header[1]), bytes: [UInt8](try read(count: count)))
            case "M" where header.count == 2:
                guard let count = Int(header[1]), count > 0, count <= 64 << 20 else { throw Self.damaged("a bad manifest length") }
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                guard let manifest = try? decoder.decode(GraphArchiveManifest.self, from: try read(count: count)) else {
                    throw Self.damaged("the manifest does not parse")
                }
                _ = try line()
                return .manifest(manifest)
            case "E" where header.count == 1:
                return .end
            default:
                throw Self.damaged("an unknown record")
            }
        }
    }

    /// Reads the whole file once: every part's bytes must match the manifest's size and
    /// checksum, and the manifest must come last. Returns the manifest.
    static func verify(_ url: URL) throws -> GraphArchiveManifest {
        let reader = try Reader(url: url)
        var hashes: [String: SHA256] = [:], sizes: [String: Int] = [:]
        while true {
            switch try reader.next() {
            case .part(let key, let bytes):
                hashes[key, default: SHA256()].update(data: bytes)
                sizes[key, default: 0] += bytes.count
            case .manifest(let manifest):
                guard case .end = try reader.next() else { throw Reader.damaged("data after the manifest") }
                guard manifest.format <= currentFormat else {
                    throw KTProvisionError(code: .invalidArchive, message: "the archive's format \(manifest.format) is newer than this build reads (\(currentFormat))")
                }
                let known = Set(manifest.parts.map(\.key))
                guard Set(sizes.keys).isSubset(of: known) else { throw Reader.damaged("a part the manifest does not list") }
                for part in manifest.parts {
                    let digest = (hashes[part.key] ?? SHA256()).finalize().map { String(format: "%02x", $0) }.joined()
                    guard sizes[part.key] ?? 0 == part.bytes, digest == part.sha256 else {
                        throw Reader.damaged("part \(part.key) does not match its checksum")
                    }
                }
                return manifest
            case .end:
                throw Reader.damaged("no manifest")
            }
        }
    }
}
