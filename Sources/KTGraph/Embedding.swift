import Crypto
public import Foundation
public import KTCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Turns texts into vectors for Qdrant.
public protocol EmbeddingService: Sendable {
    /// The length of every vector this service returns.
    var dimensions: Int { get }
    /// One vector per text, in order.
    func embed(_ texts: [String]) async throws -> [[Float]]
}

extension EmbeddingService {
    /// The vector of one text.
    public func embed(_ text: String) async throws -> [Float] {
        guard let vector = try await embed([text]).first else {
            throw KTGraphError(code: .embedding, message: "the embedding service returned no vector")
        }
        return vector
    }
}

/// A deterministic local embedder: no network, the same unit vector for the same text on every
/// machine. Words (lower-cased, split on non-alphanumerics) and their character trigrams are
/// hashed (SHA-256) into signed buckets, so texts sharing words are close in cosine distance.
/// For tests, demos and the example server's default; not a semantic model.
public struct LocalEmbedder: EmbeddingService {
    /// The vector length.
    public let dimensions: Int

    /// Creates an embedder of `dimensions` (at least 1).
    public init(dimensions: Int) {
        self.dimensions = max(1, dimensions)
    }

    /// Embeds each text.
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        texts.map(vector)
    }

    func vector(_ text: String) -> [Float] {
        var vector = [Float](repeating: 0, count: dimensions)
        let words = text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
        var features = words
        for word in words where word.count > 3 {
            let characters = Array(word)
            for start in 0...(characters.count - 3) { features.append("#" + String(characters[start..<start + 3])) }
        }
        if features.isEmpty { features = ["<empty>"] }
        for feature in features {
            let digest = Array(SHA256.hash(data: Data(feature.utf8)))
            let bucket = Int((UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])) % UInt32(dimensions))
            let weight: Float = feature.hasPrefix("#") ? 0.5 : 1
            vector[bucket] += digest[4] & 1 == 0 ? weight : -weight
        }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }
}

/// An embedder for any OpenAI-compatible `/embeddings` endpoint (OpenAI, OpenRouter, vLLM, Ollama...).
///
/// The API key is sent as a bearer token and never appears in an error or a log.
public struct OpenAICompatibleEmbedder: EmbeddingService {
    /// The endpoint base, for example `https://api.openai.com/v1`.
    public let baseURL: URL
    /// The model name.
    public let model: String
    /// The vector length the model returns (checked on every response).
    public let dimensions: Int
    private let apiKey: Secret?
    private let timeout: Duration

    /// Creates an embedder.
    public init(baseURL: URL, model: String, dimensions: Int, apiKey: Secret?, timeout: Duration = .seconds(60)) {
        self.baseURL = baseURL
        self.model = model
        self.dimensions = dimensions
        self.apiKey = apiKey
        self.timeout = timeout
    }

    private struct Request: Encodable { var model: String; var input: [String] }
    private struct Response: Decodable {
        struct Item: Decodable { var index: Int; var embedding: [Float] }
        var data: [Item]
    }

    /// Embeds `texts` in one request.
    ///
    /// - Throws: ``KTGraphError/Code/embedding`` for transport errors, non-2xx answers (status and
    ///   the first 200 bytes of the body), malformed answers or vectors of the wrong length.
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        var request = URLRequest(url: baseURL.appendingPathComponent("embeddings"))
        request.httpMethod = "POST"
        request.timeoutInterval = timeout.timeInterval
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey.revealedValue)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try JSONEncoder().encode(Request(model: model, input: texts))
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            let reason = (error as? URLError).map { "URLError \($0.code.rawValue)" } ?? "\(type(of: error))"
            throw KTGraphError(code: .embedding, message: "embedding request to \(baseURL.host ?? "?") failed: \(reason)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            // A service may echo the credentials it refused; they never reach the error.
            var body = String(decoding: data.prefix(64 * 1024), as: UTF8.self)
            if let apiKey, !apiKey.isEmpty { body = body.replacingOccurrences(of: apiKey.revealedValue, with: "******") }
            throw KTGraphError(code: .embedding, message: "embedding service answered \(status): \(body.prefix(200))")
        }
        guard let decoded = try? JSONDecoder().decode(Response.self, from: data), decoded.data.count == texts.count else {
            throw KTGraphError(code: .embedding, message: "embedding service returned an unexpected body")
        }
        let vectors = decoded.data.sorted { $0.index < $1.index }.map(\.embedding)
        guard vectors.allSatisfy({ $0.count == dimensions }) else {
            throw KTGraphError(code: .embedding, message: "embedding service returned vectors of length \(vectors.first?.count ?? 0), expected \(dimensions)")
        }
        return vectors
    }
}
