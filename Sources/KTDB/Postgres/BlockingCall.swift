import Foundation
import Synchronization

/// Runs a rare blocking call (connect, cancel) on a short-lived thread of its own, so that it
/// never occupies a thread of Swift's cooperative pool or of the event loop.
enum BlockingCall {
    /// Runs `body` on a thread of its own and returns its result, or `nil` at once when the
    /// task is cancelled first (also before the thread starts). A result that comes after the
    /// caller went away is handed to `abandoned` on that thread, to release what it holds.
    /// `ended` is called on the thread once it is done (after either), and at once when no
    /// thread started.
    static func run<T: Sendable>(
        name: String, abandoned: @escaping @Sendable (T) -> Void, ended: @escaping @Sendable () -> Void = {},
        _ body: @escaping @Sendable () -> T
    ) async -> T? {
        let handoff = Handoff<T>()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard handoff.wait(continuation) else {  // cancelled before it started
                    ended()
                    return
                }
                detach(name: name) {
                    let result = body()
                    if !handoff.deliver(result) { abandoned(result) }
                    ended()
                }
            }
        } onCancel: {
            handoff.cancel()
        }
    }

    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.name = name
        thread.stackSize = 256 * 1024
        thread.start()
    }
}

/// One result passed from a thread to a waiting task, unless the task is cancelled first:
/// whichever of ``deliver(_:)`` and ``cancel()`` comes first resumes the task.
private final class Handoff<T: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<T?, Never>)
        case cancelled
        case delivered
    }

    private let state = Mutex<State>(.idle)

    /// Registers the waiting task; `false` (and the task resumed with `nil`) when it was
    /// cancelled already.
    func wait(_ continuation: CheckedContinuation<T?, Never>) -> Bool {
        let cancelled = state.withLock { state -> Bool in
            if case .cancelled = state { return true }
            state = .waiting(continuation)
            return false
        }
        if cancelled { continuation.resume(returning: nil) }
        return !cancelled
    }

    /// Hands `value` to the waiting task; `false` when the task was cancelled and went away.
    func deliver(_ value: T) -> Bool {
        let waiting = state.withLock { state -> CheckedContinuation<T?, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .delivered
            return continuation
        }
        waiting?.resume(returning: value)
        return waiting != nil
    }

    func cancel() {
        let waiting = state.withLock { state -> CheckedContinuation<T?, Never>? in
            switch state {
            case .idle:
                state = .cancelled
                return nil
            case .waiting(let continuation):
                state = .cancelled
                return continuation
            case .cancelled, .delivered:
                return nil
            }
        }
        waiting?.resume(returning: nil)
    }
}

/// A count of running things that tasks can wait to see at zero.
final class RunningCount: Sendable {
    private let state = Mutex<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    func begin() { state.withLock { $0.count += 1 } }

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitForNone() async {
        await withCheckedContinuation { continuation in
            let none = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if none { continuation.resume() }
        }
    }
}
