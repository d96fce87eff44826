import Foundation
import Synchronization
import Testing

@testable import KTDB

@Suite("BlockingCall: a blocking call on a thread of its own, given up when its task is cancelled")
struct BlockingCallTests {
    @Test("the result comes back to the task, and nothing is abandoned")
    func result() async {
        let log = Log()
        let value = await BlockingCall.run(name: "test", abandoned: { _ in log.append("abandoned") }, ended: { log.append("ended") }) {
            log.append("body")
            return 42
        }
        #expect(value == 42)
        #expect(log.entries.first == "body")
        #expect(!log.entries.contains("abandoned"))
    }

    @Test(
        "cancelled while the call blocks: the task gets nil at once; the call's late result goes to `abandoned`, then `ended` runs, and a count of running calls waits for it"
    )
    func cancelledWhileBlocking() async throws {
        let gate = DispatchSemaphore(value: 0)
        let running = RunningCount()
        let log = Log()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        running.begin()
        let task = Task {
            await BlockingCall.run(
                name: "test", abandoned: { (value: Int) in log.append("abandoned \(value)") },
                ended: {
                    log.append("ended")
                    running.end()
                }
            ) {
                startedContinuation.yield()
                gate.wait()
                return 7
            }
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        // Should the cancellation not end the task, the call is let go after a while, and the
        // task gets its result.
        let watchdog = Task {
            do { try await Task.sleep(for: .seconds(30)) } catch { return }
            gate.signal()
        }
        task.cancel()
        #expect(await task.value == nil)
        watchdog.cancel()
        let drained = Task {
            await running.waitForNone()
            log.append("drained")
        }
        try await Task.sleep(for: .milliseconds(200))
        log.append("released")
        gate.signal()
        await drained.value
        #expect(log.entries == ["released", "abandoned 7", "ended", "drained"])
    }

    @Test("a task cancelled before the call starts gets nil, starts no thread, and `ended` runs at once")
    func cancelledBeforehand() async {
        let ran = Mutex(false)
        let ended = Mutex(false)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await BlockingCall.run(name: "test", abandoned: { _ in }, ended: { ended.withLock { $0 = true } }) {
                ran.withLock { $0 = true }
                return 1
            }
        }
        #expect(await task.value == nil)
        #expect(ended.withLock { $0 })
        try? await Task.sleep(for: .milliseconds(100))
        #expect(ran.withLock { $0 } == false)
    }
}

/// What happened, in order, from any thread.
private final class Log: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var entries: [String] { lines.withLock { $0 } }
}
