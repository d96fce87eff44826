import Testing

@testable import KTDB

/// The pool's waiter queue without a server (issue 17, item 4): a deadline or a cancellation
/// that comes before the waiter is registered still ends it, with its own ending.
@Suite("Pool waiter queue")
struct WaiterQueueTests {
    typealias Queue = WaiterQueue<String>

    @Test("an ending that comes before the registration is reported by it, and nothing is queued", arguments: [Queue.Ending.expired, .cancelled])
    func endingBeforeRegistration(ending: Queue.Ending) {
        var queue = Queue()
        let id = queue.makeID()
        #expect(queue.end(id, ending) == nil)
        #expect(queue.register(id, continuation: "waiter") == ending)
        #expect(queue.isEmpty)
    }

    @Test("the first ending wins: a cancellation is not reported as a timeout")
    func firstEndingWins() {
        var queue = Queue()
        let id = queue.makeID()
        _ = queue.end(id, .cancelled)
        _ = queue.end(id, .expired)
        #expect(queue.register(id, continuation: "waiter") == .cancelled)
    }

    @Test("a registered waiter is ended once: by its deadline, its cancellation, or a connection")
    func registered() {
        var queue = Queue()
        let a = queue.makeID(), b = queue.makeID(), c = queue.makeID()
        #expect(queue.register(a, continuation: "a") == nil)
        #expect(queue.register(b, continuation: "b") == nil)
        #expect(queue.register(c, continuation: "c") == nil)
        #expect(queue.end(b, .expired)?.continuation == "b")
        #expect(queue.end(b, .cancelled) == nil)
        #expect(queue.popFirst()?.continuation == "a")
        // `a` was handed a connection: a late deadline finds nothing and marks nothing.
        #expect(queue.end(a, .expired) == nil)
        #expect(queue.count == 1)
        #expect(queue.removeAll().map(\.continuation) == ["c"])
        #expect(queue.isEmpty)
    }

    @Test("an id forgotten (pool shut down before registration) leaves nothing behind")
    func forget() {
        var queue = Queue()
        let id = queue.makeID()
        queue.forget(id)
        #expect(queue.end(id, .expired) == nil)
        #expect(queue.register(id, continuation: "late") == nil)  // not marked: queued as usual
        #expect(queue.count == 1)
    }
}
