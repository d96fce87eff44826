import Foundation
import KTCore
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP request as the client's transport sees it.
struct QdrantHTTPRequest: Sendable {
    var method: String
    var url: URL
    var headers: [(name: String, value: String)]
    var body: Data?
}

/// The HTTP layer under ``QdrantClient``: libcurl directly, or URLSession.
protocol QdrantTransport: Sendable {
    /// Sends a request; returns the body and the HTTP status, or throws
    /// ``KTQdrantError/Code/transport`` (or ``KTQdrantError/Code/cancelled`` when the task is
    /// cancelled: the request stops).
    func perform(_ request: QdrantHTTPRequest, operation: String) async throws -> (Data, Int)
    /// Releases connections; in-flight requests finish.
    func shutdown()
}

extension QdrantClient {
    /// Which HTTP stack carries the requests.
    public struct Transport: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// libcurl easy handles, each kept alive and driven by a thread of its own (the default:
        /// measured at about curl's own latency, where URLSession added about 0.5 ms a request).
        public static let curl = Transport("curl")
        /// Foundation's URLSession.
        public static let urlSession = Transport("urlSession")

        /// The transport's name.
        public var description: String { name }
    }

    static func makeTransport(_ transport: Transport, timeout: Duration) -> any QdrantTransport {
        transport == .urlSession ? URLSessionTransport(timeout: timeout) : CurlTransport(timeout: timeout)
    }
}

/// URLSession (libcurl's multi interface inside Foundation on Linux).
final class URLSessionTransport: QdrantTransport {
    private let session: URLSession

    init(timeout: Duration) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout.timeInterval
        configuration.httpMaximumConnectionsPerHost = 16
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    func shutdown() { session.finishTasksAndInvalidate() }

    func perform(_ request: QdrantHTTPRequest, operation: String) async throws -> (Data, Int) {
        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = request.method
        for header in request.headers { urlRequest.setValue(header.value, forHTTPHeaderField: header.name) }
        urlRequest.httpBody = request.body
        let box = TaskBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Data, Int), any Error>) in
                let task = session.dataTask(with: urlRequest) { data, response, error in
                    if let error {
                        let code = (error as? URLError)?.code
                        if code == .cancelled, box.isCancelled {
                            continuation.resume(throwing: KTQdrantError(code: .cancelled, message: "the task was cancelled; the request was stopped", operation: operation))
                        } else {
                            continuation.resume(
                                throwing: KTQdrantError(
                                    code: .transport, message: "\(code.map { "URLError \($0.rawValue)" } ?? "transport error"): \(error.localizedDescription)",
                                    operation: operation))
                        }
                        return
                    }
                    continuation.resume(returning: (data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
                }
                box.set(task)
                task.resume()
            }
        } onCancel: {
            box.cancel()
        }
    }
}

/// Holds a data task so a cancellation handler can cancel it.
final class TaskBox: Sendable {
    private let task = Mutex<URLSessionDataTask?>(nil)
    private let cancelled = Atomic<Bool>(false)

    func set(_ newTask: URLSessionDataTask) {
        task.withLock { $0 = newTask }
        if cancelled.load(ordering: .acquiring) { newTask.cancel() }
    }

    func cancel() {
        cancelled.store(true, ordering: .releasing)
        task.withLock { $0 }?.cancel()
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
}
