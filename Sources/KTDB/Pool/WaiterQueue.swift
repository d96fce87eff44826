/// The checkouts waiting for a connection, in arrival order, with the outcomes that reached a
/// waiter before it was registered.
///
/// A waiting checkout has three ways to end besides being handed a connection: its deadline
/// passes, its task is cancelled, or the pool shuts down. The deadline and the cancellation
/// are noticed by other code paths (a timer task, a cancellation handler) that may run before
/// the waiter is registered; the queue remembers such an early outcome under the waiter's id so
/// that ``register(_:continuation:)`` reports it instead of queueing a waiter that nothing
/// would ever end. Generic over the continuation so that it is tested without a server.
struct WaiterQueue<Continuation> {
    /// How a waiter ended without a connection.
    enum Ending: Equatable { case expired, cancelled }

    struct Waiter {
        var id: Int
        var continuation: Continuation
    }

    private(set) var waiters: [Waiter] = []
    /// Ids made but not registered yet, with the ending that reached them meanwhile, if any.
    private var pending: [Int: Ending?] = [:]
    private var nextID = 0

    var count: Int { waiters.count }
    var isEmpty: Bool { waiters.isEmpty }

    /// A fresh waiter id, to register next.
    mutating func makeID() -> Int {
        nextID += 1
        pending[nextID] = .some(nil)
        return nextID
    }

    /// Queues the waiter, unless its deadline or cancellation came first: then it is not
    /// queued and that ending is returned.
    mutating func register(_ id: Int, continuation: Continuation) -> Ending? {
        if case .some(.some(let ending)) = pending.removeValue(forKey: id) { return ending }
        waiters.append(Waiter(id: id, continuation: continuation))
        return nil
    }

    /// Forgets an id that will not be registered (the pool was shut down meanwhile).
    mutating func forget(_ id: Int) {
        pending[id] = nil
    }

    /// Ends waiter `id` with `ending`: returns it when it is queued (for the caller to resume);
    /// when it is not registered yet, remembers the ending (the first one wins) for its
    /// registration; when it already left the queue (handed a connection), does nothing.
    mutating func end(_ id: Int, _ ending: Ending) -> Waiter? {
        if let index = waiters.firstIndex(where: { $0.id == id }) { return waiters.remove(at: index) }
        if case .some(nil) = pending[id] { pending[id] = .some(ending) }
        return nil
    }

    /// The first waiter, to hand a connection or a free slot to.
    mutating func popFirst() -> Waiter? {
        waiters.isEmpty ? nil : waiters.removeFirst()
    }

    /// Every waiter (at shutdown); early endings are forgotten.
    mutating func removeAll() -> [Waiter] {
        defer { waiters = []; pending = [:] }
        return waiters
    }
}
