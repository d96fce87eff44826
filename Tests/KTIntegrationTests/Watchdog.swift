/// Runs an action after a delay unless disarmed first. A test whose subject should end on its
/// own (a cancellation honoured) arms one to end a wait that would otherwise last (it thaws a
/// frozen network, say), and then asserts that it never fired: the subject ended without it.
struct Watchdog: Sendable {
    private let task: Task<Bool, Never>

    init(after delay: Duration = .seconds(60), _ action: @escaping @Sendable () -> Void) {
        task = Task {
            do { try await Task.sleep(for: delay) } catch { return false }
            action()
            return true
        }
    }

    /// Stops the watchdog; whether it had fired.
    func disarm() async -> Bool {
        task.cancel()
        return await task.value
    }
}
