import CKTCurl
import Foundation
import Synchronization

/// libcurl easy handles, each on a thread of its own (a blocking `curl_easy_perform` never runs
/// on Swift's cooperative pool). Idle handles are reused last-in-first-out, so sequential
/// requests share one kept-alive connection. A request is bounded by the timeout; cancelling
/// its task stops it at libcurl's next progress call (about a second at most while it waits)
/// with ``KTQdrantError/Code/cancelled``.
final class CurlTransport: QdrantTransport {
    private let idle = Mutex<[CurlWorker]>([])
    private let closed = Atomic<Bool>(false)
    private let timeoutMilliseconds: Int

    init(timeout: Duration) {
        timeoutMilliseconds = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
    }

    func shutdown() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for worker in idle.withLock({ workers in
            defer { workers = [] }; return workers
        }) { worker.stop() }
    }

    func perform(_ request: QdrantHTTPRequest, operation: String) async throws -> (Data, Int) {
        guard let worker = idle.withLock({ $0.popLast() }) ?? CurlWorker() else {
            throw KTQdrantError(code: .transport, message: "libcurl could not create a handle", operation: operation)
        }
        defer {
            if closed.load(ordering: .acquiring) { worker.stop() } else { idle.withLock { $0.append(worker) } }
        }
        let timeout = timeoutMilliseconds
        worker.setCancelled(false)
        let outcome: Result<(Data, Int), KTQdrantError> = await withTaskCancellationHandler {
            await Self.perform(request, operation: operation, timeout: timeout, on: worker)
        } onCancel: {
            worker.setCancelled(true)
        }
        return try outcome.get()
    }

    private static func perform(_ request: QdrantHTTPRequest, operation: String, timeout: Int, on worker: CurlWorker) async -> Result<(Data, Int), KTQdrantError> {
        await worker.run { handle in
            var headers = request.headers.map { strdup("\($0.name): \($0.value)") }
            defer { for header in headers { free(header) } }
            var status = 0
            var body: UnsafeMutablePointer<CChar>?
            var length = 0
            var error = [CChar](repeating: 0, count: 256)
            let payload = request.body ?? Data()
            let code = headers.withUnsafeMutableBufferPointer { headerBuffer in
                headerBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: headerBuffer.count) { headerPointers in
                    payload.withUnsafeBytes { raw in
                        kt_curl_perform(
                            handle, request.method, request.url.absoluteString, headerPointers, headerBuffer.count,
                            raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, timeout, &status, &body, &length, &error)
                    }
                }
            }
            if kt_curl_is_cancelled(code) != 0 {
                return .failure(KTQdrantError(code: .cancelled, message: "the task was cancelled; the request was stopped", operation: operation))
            }
            guard code == 0, let body else {
                let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let kind: KTQdrantError.Code = kt_curl_is_transport_error(code) != 0 ? .transport : .invalidArgument
                return .failure(KTQdrantError(code: kind, message: "libcurl error \(code): \(message)", operation: operation))
            }
            defer { kt_curl_free_body(body) }
            return .success((Data(bytes: body, count: length), status))
        }
    }
}

/// One libcurl handle and the thread that uses it.
final class CurlWorker: @unchecked Sendable {
    // Thread-safety: `handle` is used only by jobs on `thread`; `jobs`/`stopping` are guarded by `condition`.
    private let handle: OpaquePointer
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init?() {
        guard let handle = kt_curl_new() else { return nil }
        self.handle = handle
        let thread = Thread { [self] in self.loop() }
        thread.name = "kt-qdrant-curl"
        thread.stackSize = 512 * 1024
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                kt_curl_free(handle)
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) -> T) async -> T {
        let handle = UnsafeHandle(handle)
        return await withCheckedContinuation { continuation in
            condition.lock()
            jobs.append { continuation.resume(returning: body(handle.pointer)) }
            condition.signal()
            condition.unlock()
        }
    }

    /// Marks the handle's request cancelled, or not (any thread).
    func setCancelled(_ cancelled: Bool) { kt_curl_set_cancelled(handle, cancelled ? 1 : 0) }

    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }
}

private struct UnsafeHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
