import Foundation
import Synchronization
import Testing

@testable import KTDB

@Suite("BlockingCall: a blocking call on a thread of its own, given up when its task is cancelled")
struct BlockingCallTests {
    @Test("the result comes back to the task; nothing is abandoned")
    func result() async {
        let abandoned = Mutex<[Int]>([])
        let value = await BlockingCall.run(name: "test", abandoned: { value in abandoned.withLock { $0.append(value) } }) { 42 }
        #expect(value == 42)
        #expect(abandoned.withLock { $0 }.isEmpty)
    }

    @Test("cancelled while the call blocks: the task gets nil at once, and the call's late result goes to `abandoned`")
    func cancelledWhileBlocking() async throws {
        let gate = DispatchSemaphore(value: 0)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let (late, lateContinuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            await BlockingCall.run(name: "test", abandoned: { lateContinuation.yield($0) }) {
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
        gate.signal()
        var lateIterator = late.makeAsyncIterator()
        #expect(await lateIterator.next() == 7)
    }

    @Test("a task cancelled before the call starts gets nil and starts no thread")
    func cancelledBeforehand() async {
        let ran = Mutex(false)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await BlockingCall.run(name: "test", abandoned: { _ in }) {
                ran.withLock { $0 = true }
                return 1
            }
        }
        #expect(await task.value == nil)
        try? await Task.sleep(for: .milliseconds(100))
        #expect(ran.withLock { $0 } == false)
    }
}
