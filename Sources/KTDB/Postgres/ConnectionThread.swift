import Foundation

/// A dedicated OS thread that runs one connection's blocking libpq calls in order.
///
/// libpq's synchronous API blocks its caller for the whole round trip. Running every call here
/// keeps Swift's cooperative thread pool free: an `async` caller suspends on a continuation
/// and is resumed when the call returns.
final class ConnectionThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 512 * 1024
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }

    /// Runs `job` on the thread after every job submitted before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws(KTDBError) -> T) async throws(KTDBError) -> T {
        let result: Result<T, KTDBError> = await withCheckedContinuation { continuation in
            submit {
                do throws(KTDBError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Lets the thread finish its queued jobs and exit.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }
}
