import Foundation

/// Runs a rare blocking call (connect, cancel) on a short-lived thread of its own, so that it
/// never occupies a thread of Swift's cooperative pool or of the event loop.
enum BlockingCall {
    static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.name = name
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.name = name
        thread.stackSize = 256 * 1024
        thread.start()
    }
}
